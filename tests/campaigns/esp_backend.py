"""anymail's test backend, answering per address like a provider's API would (the system edge).

``ScriptedBackend.answers[address]`` is ``"refused"`` (the provider rejects the recipient),
``"503"`` (the API is unavailable), or absent (sent).
"""
from __future__ import annotations

import requests
from anymail.backends.test import EmailBackend
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus


class ScriptedBackend(EmailBackend):
    answers: dict[str, str] = {}

    def post_to_esp(self, payload, message):
        answer = self.answers.get(message.to[0])
        if answer == "refused":
            message.anymail_test_response = {"recipient_status": {
                message.to[0]: AnymailRecipientStatus(message_id=None, status="rejected")}}
        elif answer == "503":
            response = requests.Response()
            response.status_code, response.reason = 503, "Service Unavailable"
            response._content = b'{"message": "try again later"}'
            message.anymail_test_response = AnymailAPIError("Provider busy", status_code=503, response=response)
        return super().post_to_esp(payload, message)
