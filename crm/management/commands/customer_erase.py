from django.core.management.base import BaseCommand, CommandError

from crm.models import Customer
from crm.services import customer_erase

from .customer_export import NOT_FOUND

CONFIRM = "Erasing is permanent: pass --yes to erase the personal data of {external_id!r}."


class Command(BaseCommand):
    help = (
        "Erase one customer's personal data (right to erasure): the profile, events, feedback, stored "
        "recommendations and campaign history. Permanent; run customer_export first if they asked for a copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="The customer's id in the shop or source system.")
        parser.add_argument("--yes", action="store_true", help="Confirm the erasure.")

    def handle(self, *args, external_id: str, yes: bool, **options):
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise CommandError(NOT_FOUND.format(external_id=external_id))
        if not yes:
            raise CommandError(CONFIRM.format(external_id=external_id))
        customer_erase(customer=customer)
        self.stdout.write(self.style.SUCCESS(f"Erased customer {external_id}."))
