"""Reactions to CRM signals (connected in RecommendationsConfig.ready)."""

from crm.models import Customer, Feedback, Interaction


def remove_rejected_item(sender, feedback: Feedback, **kwargs) -> None:
    """Negative feedback on an item (``Feedback.NEGATIVE_KINDS``) takes it out of the customer's stored
    lists immediately."""
    from .services.registry import recommendation_remove_for_customer

    if feedback.item_id and feedback.kind in Feedback.NEGATIVE_KINDS:
        recommendation_remove_for_customer(customer=feedback.customer, item=feedback.item)


def erase_customer(sender, customer: Customer, **kwargs) -> None:
    """Right to erasure: stored lists and the per-customer arrays of every saved model."""
    from .services.erasure import customer_erase_from_models

    customer_erase_from_models(customer=customer)


def export_customer(sender, customer: Customer, **kwargs) -> dict:
    from .services.erasure import customer_recommendations_export

    return {"recommendations": customer_recommendations_export(customer=customer)}


def invalidate_after_feedback(sender, feedback: Feedback, **kwargs) -> None:
    """Negative feedback changes what the customer may see: drop their cached lists."""
    from .services.list_cache import customer_list_cache_invalidate

    if feedback.kind in Feedback.NEGATIVE_KINDS:
        customer_list_cache_invalidate(customer_ids=[feedback.customer_id])


def invalidate_customer(sender, instance: Customer | None = None, customer: Customer | None = None, **kwargs) -> None:
    """Erasure, deletion or any change to the customer row (consent, country): drop their cached lists."""
    from .services.list_cache import customer_list_cache_invalidate

    target = customer or instance
    if target is not None and target.pk is not None:
        customer_list_cache_invalidate(customer_ids=[target.pk])


def invalidate_after_events(sender, customer_ids_by_kind: dict[str, list[int]], **kwargs) -> None:
    """New purchases (and other ``EXCLUDE_SEEN_KINDS`` events) leave the discover list and enter
    buy-again: drop the cached lists of the customers who have some."""
    from .conf import recommendations_settings
    from .services.list_cache import customer_list_cache_invalidate, list_cache_seconds

    if not list_cache_seconds():
        return
    kinds = {*recommendations_settings().EXCLUDE_SEEN_KINDS, Interaction.Kind.PURCHASE}
    customer_list_cache_invalidate(
        customer_ids={pk for kind, ids in customer_ids_by_kind.items() if kind in kinds for pk in ids}
    )
