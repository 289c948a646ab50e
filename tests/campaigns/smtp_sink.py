"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, a free port) that records what it accepts."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from email import message_from_bytes

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SinkHandler:
    """Accepts everything unless told otherwise: ``rcpt_replies[address]`` is a list of replies to
    give (one per attempt) before accepting; ``data_delay`` sleeps inside DATA (to kill a client
    mid-send); ``in_data`` is set while a DATA is being held."""

    def __init__(self):
        self.messages: list = []
        self.rcpt_replies: dict[str, list[str]] = {}
        self.data_delay = 0.0
        self.delay_from = 1  # the n-th message (1-based) and later are delayed
        self.in_data = threading.Event()
        self._lock = threading.Lock()
        self.seen_data = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        replies = self.rcpt_replies.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.seen_data += 1
            n = self.seen_data
        message = message_from_bytes(envelope.content)
        with self._lock:
            self.messages.append(message)  # queued for delivery before the reply: the risky case
        if self.data_delay and n >= self.delay_from:
            self.in_data.set()
            await asyncio.sleep(self.data_delay)
        return "250 Message accepted for delivery"

    def count_by_recipient(self) -> Counter:
        return Counter(m["To"] for m in self.messages)


class SmtpSink:
    def __init__(self):
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost")

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
