"""A webhook receiver on loopback for the end-to-end tests: it verifies every delivery with the
`standardwebhooks` package (an implementation independent of the server's) and answers as a test
scripts it.

    python webhook_receiver.py [--port N]     # prints "listening <port>" once ready

Control (JSON over HTTP on the same port):
    POST /_control/endpoint {"path": "/hook", "secrets": ["whsec_..."], "statuses": [500, 200],
                             "hang_seconds": 0, "location": null}
        statuses are answered in order, the last one repeating; "location" adds that header.
    GET  /_received?path=/hook   every request received on that path, oldest first
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from standardwebhooks import Webhook

LOCK = threading.Lock()
ENDPOINTS = {}
RECEIVED = []


def verify(secrets, body, headers):
    """Which configured secrets verify the delivery (by index), and the last error if none does."""
    verified, error = [], None
    for index, secret in enumerate(secrets):
        try:
            Webhook(secret).verify(body, headers)
            verified.append(index)
        except Exception as e:  # the library's verification errors, reported to the test
            error = f"{type(e).__name__}: {e}"
    return verified, error


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, payload=None, headers=()):
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/_received":
            return self._answer(404, {"error": "unknown"})
        path = parse_qs(url.query).get("path", [None])[0]
        with LOCK:
            found = [r for r in RECEIVED if path is None or r["path"] == path]
        self._answer(200, found)

    def do_POST(self):
        url = urlparse(self.path)
        raw = self._body()
        if url.path == "/_control/endpoint":
            config = json.loads(raw)
            with LOCK:
                ENDPOINTS[config["path"]] = {
                    "secrets": config.get("secrets", []),
                    "statuses": list(config.get("statuses", [200])),
                    "hang_seconds": config.get("hang_seconds", 0),
                    "location": config.get("location"),
                }
            return self._answer(200, {"ok": True})
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            endpoint = ENDPOINTS.get(url.path)
            if endpoint is None:
                status, secrets, hang, location = 404, [], 0, None
            else:
                statuses = endpoint["statuses"]
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                secrets, hang = endpoint["secrets"], endpoint["hang_seconds"]
                location = endpoint["location"]
        text = raw.decode("utf-8", "replace")
        verified, error = verify(secrets, text, headers)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        with LOCK:
            RECEIVED.append({
                "path": url.path,
                "received_at": time.time(),
                "webhook_id": headers.get("webhook-id"),
                "webhook_timestamp": headers.get("webhook-timestamp"),
                "webhook_signature": headers.get("webhook-signature"),
                "user_agent": headers.get("user-agent"),
                "content_length": headers.get("content-length"),
                "verified_by": verified,
                "verification_error": error,
                "status": status,
                "raw": text,
                "body": parsed,
            })
        if hang:
            time.sleep(hang)
        extra = [("location", location)] if location else []
        self._answer(status, {"received": True}, extra)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
