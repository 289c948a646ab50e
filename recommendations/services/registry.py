"""Model versions: atomic activation, rollback, and per-customer edits of the served list."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from crm.models import Customer, Item

from ..models import ModelVersion, Recommendation
from ..signals import recommendations_refreshed


class ActivationError(ValueError):
    pass


VERSION_NOT_READY = "Only a scored version (status 'ready' or 'retired') can be activated; v{pk} is '{status}'."


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the one serving version, in one transaction.

    Its recommendations were written in full before this is called, so readers switch from one
    complete set to another: the previous active row and the new one flip inside one commit, and
    the partial unique index guarantees there is never a second active version.
    """
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.RETIRED):
        raise ActivationError(VERSION_NOT_READY.format(pk=version.pk, status=version.status))
    if version.is_active:
        return version
    previous = ModelVersion.objects.select_for_update().filter(is_active=True).first()
    if previous is not None:
        ModelVersion.objects.filter(pk=previous.pk).update(is_active=False, status=ModelVersion.Status.RETIRED)
    version.is_active = True
    version.status = ModelVersion.Status.READY
    version.activated_at = timezone.now()
    version.previous = previous
    version.save(update_fields=["is_active", "status", "activated_at", "previous"])
    transaction.on_commit(
        lambda: recommendations_refreshed.send(sender=ModelVersion, version=version, customer_ids=None)
    )
    return version


def model_version_rollback() -> ModelVersion:
    """Re-activate the version that served before the current one."""
    current = ModelVersion.objects.filter(is_active=True).first()
    if current is None or current.previous is None:
        raise ActivationError("There is no previous version to roll back to.")
    return model_version_activate(version=current.previous)


def recommendation_remove_for_customer(*, customer: Customer, item: Item) -> int:
    """Drop an item from the customer's stored lists at once (e.g. after "not interested")."""
    deleted, _ = Recommendation.objects.filter(customer=customer, item=item).delete()
    return deleted
