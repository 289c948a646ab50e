"""Reactions to CRM signals (connected in RecommendationsConfig.ready)."""

from crm.models import Customer, Feedback


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
