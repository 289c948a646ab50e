import json

from django.core.management.base import BaseCommand, CommandError

from crm.models import Customer
from crm.selectors import customer_export

NOT_FOUND = "No customer with external id {external_id!r}."


class Command(BaseCommand):
    help = (
        "Print everything stored about one customer as JSON (a data-subject access request). "
        "Run it when a customer asks for their data; --out writes a file instead of stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("external_id", help="The customer's id in the shop or source system.")
        parser.add_argument("--out", help="Write the JSON to this file instead of standard output.")

    def handle(self, *args, external_id: str, out: str | None, **options):
        customer = Customer.objects.filter(external_id=external_id).first()
        if customer is None:
            raise CommandError(NOT_FOUND.format(external_id=external_id))
        body = json.dumps(customer_export(customer=customer), indent=2, ensure_ascii=False)
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(body + "\n")
            self.stderr.write(f"Wrote the personal data of {external_id} to {out}.")
        else:
            self.stdout.write(body)
