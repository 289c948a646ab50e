"""Signals of the recommendations app (other apps subscribe; recommendations imports none of them)."""
from django.dispatch import Signal

#: The served recommendations changed, sent after the commit. Args: ``version`` (the ModelVersion
#: now serving) and ``customer_ids`` (a list, or None for every customer with recommendations).
recommendations_refreshed = Signal()
