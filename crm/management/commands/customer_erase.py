from django.core.management.base import CommandError

from crm.management.customer_command import CustomerCommand
from crm.models import Customer
from crm.services import customer_erase

CONFIRM = "Erasing is permanent: pass --yes to erase the personal data of {external_id!r}."


class Command(CustomerCommand):
    help = (
        "Erase one customer's personal data (right to erasure): the profile, events, feedback, stored "
        "recommendations and campaign history. Permanent; run customer_export first if they asked for a copy."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--yes", action="store_true", help="Confirm the erasure.")

    def handle_customer(self, customer: Customer, *, yes: bool, **options) -> None:
        external_id = customer.external_id
        if not yes:
            raise CommandError(CONFIRM.format(external_id=external_id))
        customer_erase(customer=customer)
        self.stdout.write(self.style.SUCCESS(f"Erased customer {external_id}."))
