"""A webhook receiver for the alert tests: an HTTP server on 127.0.0.1 that records what is
POSTed to it (tests/test_rules_notify.py, tests/test_live_server_alerts.py)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs; the first ``fail`` of them get a 503."""

    def __init__(self, fail: int = 0):
        self.bodies: list[tuple[str, dict, object]] = []
        self.fail = fail
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail > 0:
                    receiver.fail -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.bodies.append((self.path, dict(self.headers), orjson.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
