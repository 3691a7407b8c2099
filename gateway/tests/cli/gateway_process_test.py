"""What the process-level gateway tests share: their temp folder and child processes, the failure
report with the gateway's log, and the e2e FHIR server (scripts/e2e/fhir-server.mjs) as upstream.

  test = GatewayProcessTest("serve signals", node, e2e_dir)   # exits 77 (skipped) without the e2e server
  port = test.start_upstream("--delay-ms", "1500")
  test.fail("...")                                             # prints the gateway log, cleans up, exits 1
"""
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile


class GatewayProcessTest:
    def __init__(self, name, node, e2e_dir):
        if not os.path.isdir(os.path.join(e2e_dir, "node_modules", "@medplum", "fhir-router")):
            print("SKIPPED: the e2e FHIR server is not installed; run scripts/e2e/install.sh (part of scripts/setup.sh)")
            sys.exit(77)
        self.name = name
        self.node = node
        self.e2e_dir = e2e_dir
        self.work = tempfile.mkdtemp(prefix="medicus-%s-" % name.replace(" ", "-"))
        self.log_path = os.path.join(self.work, "gateway.log")
        self.children = []
        atexit.register(self.kill_children)  # also when the test itself breaks

    def kill_children(self):
        for child in self.children:
            if child.poll() is None:
                child.kill()

    def log_text(self):
        return open(self.log_path, encoding="utf-8", errors="replace").read()

    def fail(self, message):
        print("%s TEST FAILED: %s" % (self.name.upper(), message))
        if os.path.exists(self.log_path):
            print("--- gateway log")
            print(self.log_text())
        self.kill_children()
        shutil.rmtree(self.work, ignore_errors=True)
        sys.exit(1)

    def start_upstream(self, *extra):
        """Starts the e2e FHIR server on a free port; returns the port."""
        process = subprocess.Popen([self.node, "--experimental-websocket", "--no-warnings",
                                    os.path.join(self.e2e_dir, "fhir-server.mjs"), "--port", "0", *extra],
                                   stdout=subprocess.PIPE, text=True)
        self.children.append(process)
        line = process.stdout.readline()
        match = re.match(r"listening (\d+)", line)
        if not match:
            self.fail("the e2e FHIR server did not start: " + line)
        return int(match.group(1))

    def finish(self):
        """Stops the children still running and removes the temp folder (the test passed)."""
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=5)
        shutil.rmtree(self.work, ignore_errors=True)
