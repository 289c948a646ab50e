"""Reactions to CRM signals (connected in RecommendationsConfig.ready)."""

from crm.models import Feedback


def remove_rejected_item(sender, feedback: Feedback, **kwargs) -> None:
    """ "Not interested" (and dislikes) take the item out of the customer's stored lists immediately."""
    from .services.registry import recommendation_remove_for_customer

    if feedback.item_id and feedback.kind in (Feedback.Kind.NOT_INTERESTED, Feedback.Kind.DISLIKE):
        recommendation_remove_for_customer(customer=feedback.customer, item=feedback.item)
