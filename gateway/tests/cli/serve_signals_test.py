#!/usr/bin/env python3
"""SIGHUP and SIGTERM on a real `medicus-gateway serve` process in front of the e2e FHIR server.

Under load from keep-alive and fresh connections: SIGHUP reloads (a new route answers) without one request
failing, a slow one in flight across them included; a config with an error is refused, the log says why (file:line) and the running config stays;
SIGTERM lets a slow request in flight finish (Connection: close), refuses new connections and exits 0.

  serve_signals_test.py MEDICUS_GATEWAY NODE E2E_DIR
"""
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from gateway_process_test import GatewayProcessTest

gateway_bin, node, e2e_dir = sys.argv[1:4]
test = GatewayProcessTest("serve signals", node, e2e_dir)
work, children, fail, start_upstream, log_text = test.work, test.children, test.fail, test.start_upstream, test.log_text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, connection=None):
    own = connection is None
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read().decode("utf-8", "replace"), dict(reply.getheaders())
    finally:
        if own:
            conn.close()


fast = start_upstream()
slow = start_upstream("--delay-ms", "1500")
port = free_port()
config = os.path.join(work, "gateway.yaml")


def write_config(aliases, broken=False):
    text = ("server: { workers: 2, access_log: off, drain_timeout: 5s }\n"
            "listeners:\n"
            "  - { name: main, protocol: http, address: 127.0.0.1, port: %d }\n"
            "upstreams:\n"
            "  - { name: fhir, endpoints: [http://127.0.0.1:%d/fhir], response_timeout: 5s }\n"
            "  - { name: slow, endpoints: [http://127.0.0.1:%d/fhir], response_timeout: 5s }\n"
            "routes:\n"
            "  - { name: slow, match: { path_prefix: /slow }, forward: { upstream: slow } }\n" % (port, fast, slow))
    for n in range(aliases):
        text += "  - { name: alias-%d, match: { path_prefix: /r4-%d }, forward: { upstream: fhir } }\n" % (n, n)
    if broken:
        text += "  - { name: broken, match: { path_prefix: /broken }, forward: { upstream: nowhere } }\n"
    text += "  - { name: fhir, match: { path_prefix: /fhir }, forward: { upstream: fhir } }\n"
    with open(config + ".new", "w") as f:
        f.write(text)
    os.replace(config + ".new", config)  # serve never reads half a file


write_config(0)
log = open(test.log_path, "w")
server = subprocess.Popen([gateway_bin, "serve", "--config", config], stderr=log, stdout=log)
children.append(server)
for _ in range(100):
    try:
        if request(port, "GET", "/healthz")[0] == 200:
            break
    except OSError:
        time.sleep(0.1)
else:
    fail("the gateway did not start")


def wait_for_log(pattern, count, what):
    for _ in range(100):
        if len(re.findall(pattern, log_text())) >= count:
            return
        time.sleep(0.05)
    fail(what)


# --- load: keep-alive clients (reads and creates) and one that opens a connection per request ---
running = True
counts = {"ok": 0}
failures = []
lock = threading.Lock()
patient = '{"resourceType":"Patient","name":[{"family":"Neuladen"}]}'


def keep_alive_client(writes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while running:
        i += 1
        try:
            if writes and i % 2 == 0:
                status, body, _ = request(port, "POST", "/fhir/Patient", patient, {"Content-Type": "application/fhir+json"}, conn)
                expected = 201
            else:
                status, body, _ = request(port, "GET", "/fhir/Patient?_count=1", None, {}, conn)
                expected = 200
            if status != expected:
                with lock:
                    failures.append("%s: %d %s" % ("POST" if expected == 201 else "GET", status, body[:200]))
            else:
                with lock:
                    counts["ok"] += 1
        except (OSError, http.client.HTTPException) as e:
            with lock:
                failures.append("keep-alive request: %r" % e)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.close()


def fresh_connection_client():
    while running:
        try:
            status, body, _ = request(port, "GET", "/fhir/metadata")
            with lock:
                if status == 200:
                    counts["ok"] += 1
                else:
                    failures.append("metadata: %d %s" % (status, body[:200]))
        except (OSError, http.client.HTTPException) as e:
            with lock:
                failures.append("fresh connection: %r" % e)


load = [threading.Thread(target=keep_alive_client, args=(w,)) for w in (False, True, True)]
load.append(threading.Thread(target=fresh_connection_client))
for t in load:
    t.start()

# --- SIGHUP five times under load, each adding a route that must answer afterwards; a slow request (1.5 s)
# is in flight across the first reloads ---


def start_slow_request():
    """Sends a request to the slow route on a thread; the result dict gets "reply" or "error"."""
    result = {}

    def run():
        try:
            result["reply"] = request(port, "GET", "/slow/Patient?_count=1")
        except (OSError, http.client.HTTPException) as e:
            result["error"] = repr(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


across, across_reload = start_slow_request()
for n in range(1, 6):
    time.sleep(0.3)
    write_config(n)
    server.send_signal(signal.SIGHUP)
    wait_for_log(r"reload: new config active \(%d routes\)" % (n + 2), 1, "no 'new config active' after SIGHUP %d" % n)
    status, body, _ = request(port, "GET", "/r4-%d/Patient?_count=1" % (n - 1))
    if status != 200:
        fail("the route added by reload %d answers %d: %s" % (n, status, body[:300]))

across.join()
if across_reload.get("reply", (0,))[0] != 200:
    fail("the slow request in flight across the reloads failed: %r" % (across_reload.get("reply") or across_reload.get("error"),))

# --- a config with an error: refused with file:line and the reason; the running one stays ---
write_config(5, broken=True)
server.send_signal(signal.SIGHUP)
wait_for_log(r"reload failed; keeping the running config:", 1, "the failed reload was not reported")
if not re.search(re.escape(config) + r":\d+:\d+: .*nowhere", log_text()):
    fail("the failed reload did not name file:line and the unknown upstream")
time.sleep(0.3)
if request(port, "GET", "/r4-4/Patient?_count=1")[0] != 200:
    fail("the running config was not kept after a failed reload")
if request(port, "GET", "/broken/Patient")[0] != 404:
    fail("the broken config's route is active")

running = False
for t in load:
    t.join()
if failures:
    fail("%d of %d requests failed during reloads, first: %s" % (len(failures), len(failures) + counts["ok"], failures[0]))
if counts["ok"] < 100:
    fail("only %d requests during the reloads" % counts["ok"])
metrics = request(port, "GET", "/metrics")[1]
for line in ('medicus_gateway_config_reloads_total{result="success"} 5', 'medicus_gateway_config_reloads_total{result="failure"} 1'):
    if line not in metrics:
        fail("/metrics lacks " + line)

# --- SIGTERM: the slow request in flight finishes, new connections are refused, exit 0 ---
slow_thread, in_flight = start_slow_request()
time.sleep(0.4)
server.send_signal(signal.SIGTERM)
wait_for_log(r"stopping: draining requests in flight", 1, "no drain line after SIGTERM")
time.sleep(0.2)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        fail("a new connection was accepted while draining")
except OSError:
    pass
slow_thread.join()
if "reply" not in in_flight:
    fail("the request in flight failed: " + in_flight.get("error", "?"))
status, body, headers = in_flight["reply"]
if status != 200 or headers.get("Connection", headers.get("connection", "")).lower() != "close":
    fail("the request in flight got %d (Connection: %s)" % (status, headers.get("Connection")))
try:
    code = server.wait(timeout=10)
except subprocess.TimeoutExpired:
    fail("the gateway did not exit after SIGTERM")
if code != 0:
    fail("the gateway exited with %d after SIGTERM" % code)
if "medicus-gateway: stopped" not in log_text():
    fail("no 'stopped' line")

test.finish()
print("serve signals test passed: %d requests through 5 SIGHUP reloads and a refused one, none failed; "
      "SIGTERM drained a request in flight and exited 0" % counts["ok"])
