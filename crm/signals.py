"""Signals the CRM sends so that downstream apps can react without crm importing them."""
from django.dispatch import Signal

# Sent after explicit feedback is stored. kwargs: feedback (crm.Feedback).
feedback_recorded = Signal()

# Sent after new events are stored in bulk (``interaction_ingest_many``), after the commit. kwargs:
# customer_ids_by_kind ({kind: sorted customer ids with a new event of that kind}).
interactions_recorded = Signal()

# Sent before a customer's personal data is erased. kwargs: customer (crm.Customer).
customer_erasing = Signal()

# Sent by ``customer_export`` to collect what downstream apps store about a customer. kwargs:
# customer (crm.Customer). Each receiver returns a dict {section name: JSON-able value}; the export
# includes every section, so it covers everything ``customer_erase`` removes.
customer_exporting = Signal()

# Sent to check a feedback's ``campaign_recipient_id``. kwargs: recipient_id (int). A receiver that
# knows recipients returns the id of the customer the recipient belongs to (or None if unknown).
campaign_recipient_owner = Signal()
