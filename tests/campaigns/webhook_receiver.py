"""A real HTTP receiver on 127.0.0.1 for outbound webhooks, in a thread.

It verifies each request's Tailored-Signature like an integration would, answers ``fail_first``
requests with 503, can stall its first successful answer past the sender's timeout (so the sender
retries a delivery the receiver already accepted), and accepts each event id once.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from campaigns.services.webhooks_out import webhook_signature_verify


class WebhookReceiver:
    def __init__(self, secret: str, *, fail_first: int = 0, stall_first_accept: float = 0.0, always: int = 0):
        self.secret, self.fail_first, self.stall, self.always = secret, fail_first, stall_first_accept, always
        self.requests: list[dict] = []  # every request: event id, signature ok, answer
        self.accepted: dict[str, dict] = {}  # event id -> payload, once each
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                verified = webhook_signature_verify(
                    secret=receiver.secret, header=self.headers.get("Tailored-Signature", ""), body=body)
                event_id = self.headers.get("Tailored-Event-Id", "")
                with receiver.lock:
                    n = len(receiver.requests)
                    code = 401 if not verified else receiver.always or (503 if n < receiver.fail_first else 200)
                    first_accept = code == 200 and event_id not in receiver.accepted
                    if first_accept:
                        receiver.accepted[event_id] = json.loads(body)
                    receiver.requests.append({"event_id": event_id, "verified": verified, "code": code})
                if first_accept and receiver.stall:
                    time.sleep(receiver.stall)  # accepted, but the sender gives up waiting
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tailored"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
