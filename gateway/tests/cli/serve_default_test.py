#!/usr/bin/env python3
"""`medicus-gateway serve` with no config (the embedded default) as a real process, in a fresh folder.

The embedded default's listeners and upstream, moved off their fixed ports (8443, 8080, 8103) with the
serve options --https-port 0, --http-port 0 and --upstream (the e2e FHIR server on a free port); all
else is what users get. Checks: the self-signed certificate is made at first start under
./medicus-data/tls/ and is the one served; `curl -k https://.../fhir/metadata` gives 200 with a
CapabilityStatement; POST Patient gives 201 with a Location naming the gateway; the Patient reads back
over the HTTP listener; /metrics and /healthz answer; SIGHUP says there is no file to reload and serving goes on; SIGTERM exits 0; a second start keeps the certificate;
--base-dir puts medicus-data/ elsewhere. The README's first requests to send run as written (other ports).

  serve_default_test.py MEDICUS_GATEWAY NODE E2E_DIR
"""
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time

from gateway_process_test import GatewayProcessTest

gateway_bin, node, e2e_dir = sys.argv[1:4]
gateway_bin = os.path.abspath(gateway_bin)  # serve runs in the temp folder
source_dir = os.path.dirname(os.path.dirname(os.path.abspath(e2e_dir)))  # E2E_DIR is SOURCE/scripts/e2e
test = GatewayProcessTest("serve default", node, e2e_dir)
curl = shutil.which("curl")
if not curl:
    print("SKIPPED: curl is not installed")
    sys.exit(77)
work, children, fail, log_text, log_path = test.work, test.children, test.fail, test.log_text, test.log_path
upstream_url = "http://127.0.0.1:%d/fhir" % test.start_upstream()


def start_gateway(*extra):
    """serve on the embedded default in `work`; returns the process and its (https, http) ports from the log."""
    log = open(log_path, "w")
    process = subprocess.Popen([gateway_bin, "serve", "--https-port", "0", "--http-port", "0", "--upstream", upstream_url,
                                *extra], cwd=work, stderr=log, stdout=log)
    children.append(process)
    for _ in range(100):
        https = re.search(r"listener https on https://127\.0\.0\.1:(\d+)", log_text())
        http = re.search(r"listener http on http://127\.0\.0\.1:(\d+)", log_text())
        if https and http:
            return process, int(https.group(1)), int(http.group(1))
        if process.poll() is not None:
            fail("serve exited with %d at start" % process.returncode)
        time.sleep(0.1)
    fail("serve did not say where it listens")


def curl_request(url, method="GET", body=None, headers=()):
    """(status, lower-case headers, body) of one request with `curl -k` (the self-signed certificate)."""
    command = [curl, "-sk", "-m", "20", "-D", "-", "-X", method, url]
    for header in headers:
        command += ["-H", header]
    if body is not None:
        command += ["--data-binary", body]
    out = subprocess.run(command, capture_output=True)  # bytes: text mode would turn CRLF into LF
    if out.returncode != 0:
        fail("curl %s %s failed (%d): %s" % (method, url, out.returncode, out.stderr.decode(errors="replace")))
    head, _, text = out.stdout.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), fields, text


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        fail("serve did not exit after SIGTERM")
    if code != 0:
        fail("serve exited with %d after SIGTERM" % code)
    if "medicus-gateway: stopped" not in log_text():
        fail("no 'stopped' line after SIGTERM")


# --- first start: the certificate is made, the gateway answers over HTTPS and HTTP ---
certificate = os.path.join(work, "medicus-data", "tls", "gateway.crt")
if os.path.exists(certificate):
    fail("the fresh folder has a certificate already")
gateway, https_port, http_port = start_gateway()
if not os.path.exists(certificate) or not os.path.exists(os.path.join(work, "medicus-data", "tls", "gateway.key")):
    fail("no certificate and key under medicus-data/tls/ after the first start")
if "made a self-signed certificate " + certificate not in log_text():
    fail("the log does not say the certificate was made")
served = ssl.get_server_certificate(("127.0.0.1", https_port))
made = open(certificate).read()
if ssl.PEM_cert_to_DER_cert(served) != ssl.PEM_cert_to_DER_cert(made):
    fail("the HTTPS listener does not serve medicus-data/tls/gateway.crt")

https_base = "https://127.0.0.1:%d/fhir" % https_port
status, headers, body = curl_request(https_base + "/metadata")
if status != 200 or json.loads(body).get("resourceType") != "CapabilityStatement":
    fail("GET /fhir/metadata over HTTPS gave %d: %s" % (status, body[:300]))
if not headers.get("content-type", "").startswith("application/fhir+json"):
    fail("/fhir/metadata came as " + headers.get("content-type", "?"))

patient = json.dumps({"resourceType": "Patient", "name": [{"family": "Default", "given": ["Serve"]}]})
status, headers, body = curl_request(https_base + "/Patient", "POST", patient, ["Content-Type: application/fhir+json"])
location = headers.get("location", "")
if status != 201:
    fail("POST /fhir/Patient gave %d: %s" % (status, body[:300]))
if not location.startswith(https_base + "/Patient/") or upstream_url in location:
    fail("the Location does not name the gateway: " + location)
patient_id = location[len(https_base + "/Patient/"):].split("/")[0]

# The HTTP listener forwards the same route, and XML is converted from the JSON-only upstream.
status, headers, body = curl_request("http://127.0.0.1:%d/fhir/Patient/%s" % (http_port, patient_id),
                                     headers=["Accept: application/fhir+xml"])
if status != 200 or "<Patient" not in body or 'value="Default"' not in body:
    fail("GET Patient over HTTP as XML gave %d: %s" % (status, body[:300]))

status, _, body = curl_request("http://127.0.0.1:%d/healthz" % http_port)
if status != 200:
    fail("/healthz gave %d" % status)
status, _, body = curl_request("https://127.0.0.1:%d/metrics" % https_port)
if status != 200:
    fail("/metrics gave %d" % status)
for line in ('medicus_gateway_requests_total{method="POST",route="fhir",status="201"} 1',
             'medicus_gateway_requests_total{method="GET",route="fhir",status="200"}'):
    if line not in body:
        fail("/metrics lacks " + line)

# The README's first requests, as written there (its ports replaced by these), from the repository root.
readme = open(os.path.join(source_dir, "README.md"), encoding="utf-8").read()
block = re.search(r"The first request to send:\n+```sh\n(.*?)```", readme, re.S)
if not block:
    fail("README.md has no ```sh block after 'The first request to send:'")
commands = [c.replace("127.0.0.1:8443", "127.0.0.1:%d" % https_port).replace("127.0.0.1:8080", "127.0.0.1:%d" % http_port)
            for c in block.group(1).replace("\\\n", " ").splitlines() if c.strip()]
expected = ['"resourceType":"CapabilityStatement"', '"resourceType":"Patient"', "<Bundle", "# HELP medicus_gateway"]
if len(commands) != len(expected):
    fail("the README shows %d first requests, this test knows %d: %s" % (len(commands), len(expected), commands))
for command, want in zip(commands, expected):
    out = subprocess.run(["bash", "-c", command], cwd=source_dir, capture_output=True, text=True, timeout=30)
    if want not in out.stdout:
        fail("the README's `%s` printed no %s: %s %s" % (command, want, out.stdout[:300], out.stderr[:300]))
created = subprocess.run(["bash", "-c", commands[2]], cwd=source_dir, capture_output=True, text=True, timeout=30).stdout
if 'value="M\u00fcller-L\u00fcdenscheidt"' not in created:
    fail("the README's search does not find the README's Patient: " + created[:300])

# SIGHUP: the embedded default has no file to reload; it says so and keeps serving, no failed reload.
gateway.send_signal(signal.SIGHUP)
for _ in range(50):
    if "SIGHUP: no config file to reload" in log_text():
        break
    time.sleep(0.1)
else:
    fail("no log line after SIGHUP on the embedded default")
status, _, body = curl_request("http://127.0.0.1:%d/metrics" % http_port)
if status != 200 or 'medicus_gateway_config_reloads_total{result="failure"}' in body:
    fail("SIGHUP on the embedded default counted as a failed reload (or /metrics gave %d)" % status)
if curl_request(https_base + "/metadata")[0] != 200:
    fail("the gateway stopped serving after SIGHUP")
stop(gateway)

# --- second start in the same folder: the certificate is kept, not made again ---
gateway, https_port, http_port = start_gateway()
if "made a self-signed certificate" in log_text():
    fail("the second start made a new certificate")
if open(certificate).read() != made:
    fail("the second start changed the certificate")
status, _, body = curl_request("https://127.0.0.1:%d/fhir/Patient/%s" % (https_port, patient_id))
if status != 200 or "Default" not in body:
    fail("GET Patient after the restart gave %d: %s" % (status, body[:300]))
stop(gateway)

# --- --base-dir: medicus-data/ goes there instead of the current directory ---
elsewhere = os.path.join(work, "elsewhere")
gateway, https_port, http_port = start_gateway("--base-dir", elsewhere)
elsewhere_certificate = os.path.join(elsewhere, "medicus-data", "tls", "gateway.crt")
if "made a self-signed certificate " + elsewhere_certificate not in log_text():
    fail("--base-dir did not make its certificate under " + elsewhere)
served = ssl.get_server_certificate(("127.0.0.1", https_port))
if ssl.PEM_cert_to_DER_cert(served) != ssl.PEM_cert_to_DER_cert(open(elsewhere_certificate).read()):
    fail("with --base-dir the HTTPS listener does not serve its certificate")
stop(gateway)

test.finish()
print("serve on the embedded default: certificate made at first start and kept, metadata, create, read (XML), "
      "/metrics, /healthz, SIGTERM exit 0, --base-dir")
