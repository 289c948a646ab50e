"""Signals the CRM sends so that downstream apps can react without crm importing them."""
from django.dispatch import Signal

# Sent after explicit feedback is stored. kwargs: feedback (crm.Feedback).
feedback_recorded = Signal()

# Sent before a customer's personal data is erased. kwargs: customer (crm.Customer).
customer_erasing = Signal()
