"""A console e-mail backend that logs one line per message (``EMAIL_URL=consolemail://``, the default).

Django's console backend prints every message in full: a campaign of 64 e-mails floods a terminal
with thousands of lines of MIME. A developer wants to see that mail went out, to whom, about what;
the full messages are one ``EMAIL_URL=filemail:///path`` away (and visible in the admin's outbox).
"""
from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleBackend


class OneLineConsoleBackend(ConsoleBackend):
    def write_message(self, message) -> None:
        recipients = ", ".join(message.recipients())
        self.stream.write(f"e-mail to {recipients}: {message.subject}\n")
