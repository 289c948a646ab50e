"""Webhook requests shaped like each provider's documented format (as anymail's own tests use them).

Each builder returns ``(path, body_bytes, content_type, extra_headers)`` for one event about one
message: ``kind`` is ``delivered``, ``hard_bounce``, ``soft_bounce``, ``complaint`` or ``open``.
Sources: Amazon SES event publishing (SNS notification wrapping the SES event JSON), Mailgun
webhooks (JSON ``signature`` + ``event-data``), Postmark webhooks (RecordType ...), SendGrid's event
webhook (a JSON array), Brevo transactional webhooks (``event``, ``message-id``, ``ts_epoch``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

MAILGUN_SIGNING_KEY = "key-mailgun-signing-0123456789"
WEBHOOK_SECRET = "provider:s3cret-hook-pass"
SES_TIMESTAMP = "2026-11-30T10:00:00.000Z"


def ses(kind: str, *, message_id: str, email: str, event_id: str, **_) -> tuple:
    mail = {"timestamp": SES_TIMESTAMP, "source": "shop@example.com", "messageId": message_id,
            "destination": [email], "headers": [], "commonHeaders": {"subject": "Picks"}}
    if kind == "delivered":
        event = {"eventType": "Delivery", "mail": mail, "delivery": {
            "timestamp": SES_TIMESTAMP, "processingTimeMillis": 546, "recipients": [email],
            "smtpResponse": "250 2.6.0 Message received", "reportingMTA": "a8-70.smtp-out.amazonses.com"}}
    elif kind in ("hard_bounce", "soft_bounce"):
        hard = kind == "hard_bounce"
        event = {"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent" if hard else "Transient", "bounceSubType": "General" if hard else "MailboxFull",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1" if hard else "4.2.2",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown" if hard
                                   else "smtp; 452 4.2.2 mailbox full"}],
            "timestamp": SES_TIMESTAMP, "feedbackId": f"fb-{event_id}", "reportingMTA": "dsn; a8-70.smtp-out"}}
    elif kind == "complaint":
        event = {"eventType": "Complaint", "mail": mail, "complaint": {
            "complainedRecipients": [{"emailAddress": email}], "timestamp": SES_TIMESTAMP,
            "feedbackId": f"fb-{event_id}", "userAgent": "Yahoo!-Mail-Feedback/2.0", "complaintFeedbackType": "abuse"}}
    else:
        event = {"eventType": "Open", "mail": mail, "open": {
            "timestamp": SES_TIMESTAMP, "userAgent": "Mozilla/5.0", "ipAddress": "17.58.0.1"}}
    body = {"Type": "Notification", "MessageId": event_id,
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events", "Subject": None,
            "Message": json.dumps(event), "Timestamp": SES_TIMESTAMP, "SignatureVersion": "1",
            "Signature": "EXAMPLE", "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification", "HTTP_X_AMZ_SNS_MESSAGE_ID": event_id}
    return "/webhooks/esp/amazon_ses/tracking/", json.dumps(body).encode(), "text/plain; charset=UTF-8", headers


def mailgun_signature(timestamp: str, token: str, key: str = MAILGUN_SIGNING_KEY) -> dict:
    digest = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"timestamp": timestamp, "token": token, "signature": digest}


def mailgun(kind: str, *, message_id: str, email: str, event_id: str, key: str = MAILGUN_SIGNING_KEY, **_) -> tuple:
    timestamp = str(int(time.time()))
    data = {"id": f"evt-{event_id}", "timestamp": float(timestamp), "recipient": email, "tags": [],
            "user-variables": {}, "message": {"headers": {"message-id": message_id.strip("<>"),
                                                          "to": email, "subject": "Picks"}}}
    if kind == "delivered":
        data.update(event="delivered", **{"delivery-status": {"code": 250, "message": "OK", "description": ""}})
    elif kind in ("hard_bounce", "soft_bounce"):
        hard = kind == "hard_bounce"
        data.update(event="failed", severity="permanent" if hard else "temporary",
                    reason="bounce" if hard else "generic",
                    **{"delivery-status": {"code": 550 if hard else 452, "description": "",
                                           "message": "550 5.1.1 No such user" if hard else "452 mailbox full"}})
    elif kind == "complaint":
        data.update(event="complained")
    else:
        data.update(event="opened", **{"client-info": {"client-type": "email client", "user-agent": "Mozilla/5.0",
                                                       "bot": "apple"}})
    body = {"signature": mailgun_signature(timestamp, event_id, key), "event-data": data}
    return "/webhooks/esp/mailgun/tracking/", json.dumps(body).encode(), "application/json", {}


def postmark(kind: str, *, message_id: str, email: str, event_id: str, **_) -> tuple:
    if kind == "delivered":
        body = {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": message_id,
                "Recipient": email, "Tag": "", "DeliveredAt": "2026-11-30T10:00:00Z",
                "Details": "Test delivery webhook details", "Metadata": {}}
    elif kind in ("hard_bounce", "soft_bounce"):
        body = {"RecordType": "Bounce", "ID": int(event_id), "Type": "HardBounce" if kind == "hard_bounce"
                else "SoftBounce", "TypeCode": 1 if kind == "hard_bounce" else 4096, "Name": "Hard bounce",
                "MessageID": message_id, "MessageStream": "outbound", "Description": "The server was unable to deliver",
                "Details": "smtp;550 5.1.1 The email account does not exist", "Email": email,
                "From": "shop@example.com",
                "BouncedAt": "2026-11-30T10:00:00Z", "DumpAvailable": True, "Inactive": True, "CanActivate": True,
                "Subject": "Picks", "Metadata": {}}
    elif kind == "complaint":
        body = {"RecordType": "SpamComplaint", "ID": int(event_id), "Type": "SpamComplaint", "TypeCode": 512,
                "MessageID": message_id, "MessageStream": "outbound", "Email": email, "From": "shop@example.com",
                "BouncedAt": "2026-11-30T10:00:00Z", "Description": "", "Details": "", "Subject": "Picks",
                "Metadata": {}}
    else:
        body = {"RecordType": "Open", "MessageID": message_id, "Recipient": email, "FirstOpen": True,
                "ReceivedAt": "2026-11-30T10:00:00Z", "UserAgent": "Mozilla/5.0", "Platform": "Unknown",
                "Metadata": {}}
    return "/webhooks/esp/postmark/tracking/", json.dumps(body).encode(), "application/json", {}


def sendgrid(kind: str, *, message_id: str, email: str, event_id: str, **_) -> tuple:
    event = {"email": email, "timestamp": int(time.time()), "anymail_id": message_id, "sg_event_id": event_id,
             "sg_message_id": f"{event_id}.filter0001", "smtp-id": f"<{event_id}@ismtpd0001>"}
    if kind == "delivered":
        event.update(event="delivered", response="250 OK")
    elif kind in ("hard_bounce", "soft_bounce"):
        event.update(event="bounce", type="bounce" if kind == "hard_bounce" else "blocked",
                     reason="550 5.1.1 Unknown user", status="5.1.1")
    elif kind == "complaint":
        event.update(event="spamreport")
    else:
        event.update(event="open", useragent="Mozilla/5.0", ip="17.58.0.1", sg_machine_open=True)
    return "/webhooks/esp/sendgrid/tracking/", json.dumps([event]).encode(), "application/json", {}


def brevo(kind: str, *, message_id: str, email: str, event_id: str, **_) -> tuple:
    body = {"email": email, "id": 11, "date": "2026-11-30 11:00:00", "ts": 1764496800, "ts_event": 1764496800,
            "ts_epoch": 1764496800000 + int(event_id), "message-id": message_id, "subject": "Picks",
            "tag": "", "sending_ip": "185.41.28.109"}
    if kind == "delivered":
        body["event"] = "delivered"
    elif kind == "hard_bounce":
        body.update(event="hard_bounce", reason="550 5.1.1 user unknown")
    elif kind == "soft_bounce":
        body.update(event="soft_bounce", reason="452 4.2.2 mailbox full")
    elif kind == "complaint":
        body["event"] = "spam"
    else:
        body["event"] = "unique_proxy_open"
    return "/webhooks/esp/brevo/tracking/", json.dumps(body).encode(), "application/json", {}


PROVIDERS = {"amazon_ses": ses, "mailgun": mailgun, "postmark": postmark, "sendgrid": sendgrid, "brevo": brevo}

# What each provider's send API answers, as a message id (the webhook refers to it).
MESSAGE_IDS = {
    "amazon_ses": "0102018c1f5e8a2b-5f7a1d5c-0b8e-4c6a-9a51-2c1b0e5f7a11-000000",
    "mailgun": "<20261130100000.1.ABCDEF0123456789@mg.example.com>",
    "postmark": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
    "sendgrid": "9f1c7b70-0c1a-4b8e-8f0a-3d7e5c2a1b90",
    "brevo": "<202611301000.12345678901@smtp-relay.mailin.fr>",
}
