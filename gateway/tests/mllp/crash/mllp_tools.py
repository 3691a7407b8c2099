"""Helpers of the MLLP crash and reload tests: a recording FHIR upstream, an MLLP load client and a one-message
client (stdlib only)."""
import hashlib
import http.server
import json
import os
import socket
import sys
import threading

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"


def adt(control_id, patient):
    return ("MSH|^~\\&|KIS|KLINIKUM|GW|MEDICUS|20261122101500||ADT^A01^ADT_A01|%s|P|2.5\r"
            "EVN|A01|20261122101500\r"
            "PID|1||%s^^^KLINIKUM^PI||Mueller^Juergen||19700101|M\r"
            "PV1|1|I|STA1^101^1\r" % (control_id, patient)).encode()


def upstream(port, log_path, port_path=None):
    """Answers every POST with 200 and appends "X-Medicus-Message<TAB>sha256(body)" to log_path.
    Port 0 binds a free port; port_path, when given, receives the port once the server listens."""
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with lock:
                log.write("%s\t%s\n" % (self.headers.get("X-Medicus-Message", "?"), hashlib.sha256(body).hexdigest()))
            reply = json.dumps({"resourceType": "Bundle", "type": "transaction-response"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if port_path:
        with open(port_path + ".tmp", "w") as out:
            out.write("%d\n" % server.server_address[1])
        os.replace(port_path + ".tmp", port_path)
    server.serve_forever()


def load(port, first, count, acked_path, window=16):
    """Sends messages first..first+count-1 with a window in flight; records each AA's MSH-10."""
    out = open(acked_path, "a", buffering=1)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return
    buffer = b""
    sent = first
    pending = []
    end = first + count
    try:
        while sent < end or pending:
            while sent < end and len(pending) < window:
                cid = "C%d" % sent
                s.sendall(VT + adt(cid, "P%d" % (sent % 50)) + FS + CR)
                pending.append(cid)
                sent += 1
            while FS not in buffer:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            frame, _, buffer = buffer.partition(FS + CR)
            frame = frame.lstrip(VT)
            cid = pending.pop(0)
            msa = [seg for seg in frame.split(b"\r") if seg.startswith(b"MSA|")]
            if msa and msa[0].split(b"|")[1] == b"AA" and msa[0].split(b"|")[2].decode() == cid:
                out.write(cid + "\n")
    except OSError:
        return


def ack(port, control_id, patient, charset):
    """Sends one ADT message (its umlauts encoded in `charset`: latin-1 or utf-8) and prints MSA-1 of the ACK."""
    message = adt(control_id, patient).decode().replace("Mueller^Juergen", "M\u00fcller^J\u00fcrgen").encode(charset)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(VT + message + FS + CR)
        buffer = b""
        while FS not in buffer:
            chunk = s.recv(65536)
            if not chunk:
                break
            buffer += chunk
    msa = [seg for seg in buffer.lstrip(VT).split(b"\r") if seg.startswith(b"MSA|")]
    print(msa[0].split(b"|")[1].decode() if msa else "none")


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "ack":
        ack(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        load(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
