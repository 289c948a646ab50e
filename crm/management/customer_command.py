"""The shape of a management command about one customer, named by their ``external_id``."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from crm.models import Customer
from crm.selectors import customer_get

NOT_FOUND = "No customer with external id {external_id!r}."


class CustomerCommand(BaseCommand):
    """Takes the positional ``external_id``, fails with ``NOT_FOUND`` for an unknown one, and hands
    the customer to ``handle_customer`` with the command's other options."""

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="The customer's id in the shop or source system.")

    def handle(self, *args, external_id: str, **options):
        customer = customer_get(external_id=external_id)
        if customer is None:
            raise CommandError(NOT_FOUND.format(external_id=external_id))
        self.handle_customer(customer, **options)

    def handle_customer(self, customer: Customer, **options) -> None:
        raise NotImplementedError
