"""Right to erasure, CRM side: tombstones of erased external ids and scrubbing the admin log.

``crm.services.customer_erase`` deletes the customer (events, feedback, consent history and every
downstream row cascade with it), lets downstream apps clean what a cascade cannot reach (model
artefacts) through the ``customer_erasing`` signal, removes the customer from the admin log, and
leaves a tombstone: the SHA-256 of the external id and the time of erasure, so that a re-import of
old data or a replayed history never brings the customer back into the CRM or a training snapshot.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone

from .models import ConsentEvent, Customer, ErasedCustomer, Feedback, Interaction

ERASED = "[erased]"
MIN_SCRUB_LENGTH = 3  # shorter values (initials, "DE") would redact unrelated log lines


def external_id_hash(external_id: str) -> str:
    return hashlib.sha256(external_id.encode()).hexdigest()


def erased_customer_tombstone(*, external_id: str) -> ErasedCustomer:
    tombstone, _ = ErasedCustomer.objects.update_or_create(
        external_id_hash=external_id_hash(external_id), defaults={"erased_at": timezone.now()}
    )
    return tombstone


def erased_external_ids(external_ids: Iterable[str]) -> dict[str, datetime]:
    """{external id: erased_at} for the given ids that were erased (a few queries whatever the count)."""
    by_hash = {external_id_hash(e): e for e in set(external_ids)}
    if not by_hash or not ErasedCustomer.objects.exists():
        return {}
    found: dict[str, datetime] = {}
    hashes = list(by_hash)
    for start in range(0, len(hashes), 5000):
        rows = ErasedCustomer.objects.filter(external_id_hash__in=hashes[start:start + 5000])
        found.update({by_hash[h]: at for h, at in rows.values_list("external_id_hash", "erased_at")})
    return found


def erased_customer_cutoffs() -> dict[int, datetime]:
    """{customer id: erased_at} of current customers whose external id was erased before: their
    events from before that moment are old data re-imported, never to be trained on."""
    first = ErasedCustomer.objects.order_by("erased_at").values_list("erased_at", flat=True).first()
    if first is None:
        return {}
    recent = dict(Customer.objects.filter(created_at__gte=first).values_list("external_id", "pk"))
    return {recent[e]: at for e, at in erased_external_ids(recent).items()}


def admin_log_scrub(*, customer: Customer) -> int:
    """Remove the customer from the admin log: entries about them or their rows go, and their name,
    e-mail or external id in any other entry is replaced by ``[erased]``. Returns entries touched."""
    own = [
        (Customer, [customer.pk]),
        (Feedback, list(customer.feedback.values_list("pk", flat=True))),
        (ConsentEvent, list(customer.consent_events.values_list("pk", flat=True))),
        (Interaction, list(customer.interactions.values_list("pk", flat=True)[:10_000])),
    ]
    touched = 0
    for model, pks in own:
        if pks:
            content_type = ContentType.objects.get_for_model(model)
            touched += LogEntry.objects.filter(
                content_type=content_type, object_id__in=[str(pk) for pk in pks]
            ).delete()[0]
    needles = {v for v in (customer.full_name, customer.email, customer.external_id, str(customer))
               if v and len(v) >= MIN_SCRUB_LENGTH}
    if not needles:
        return touched
    match = Q()
    for needle in needles:
        match |= Q(object_repr__icontains=needle) | Q(change_message__icontains=needle)
    for entry in LogEntry.objects.filter(match):
        for needle in needles:
            entry.object_repr = _replace(entry.object_repr, needle)
            entry.change_message = _replace(entry.change_message, needle)
        entry.save(update_fields=["object_repr", "change_message"])
        touched += 1
    return touched


def _replace(text: str, needle: str) -> str:
    lowered, low_needle, out, start = text.lower(), needle.lower(), [], 0
    while (found := lowered.find(low_needle, start)) >= 0:
        out.append(text[start:found] + ERASED)
        start = found + len(needle)
    return "".join(out) + text[start:]
