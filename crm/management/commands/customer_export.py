import json

from crm.management.customer_command import NOT_FOUND, CustomerCommand
from crm.models import Customer
from crm.selectors import customer_export

__all__ = ["NOT_FOUND", "Command"]


class Command(CustomerCommand):
    help = (
        "Print everything stored about one customer as JSON (a data-subject access request). "
        "Run it when a customer asks for their data; --out writes a file instead of stdout."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--out", help="Write the JSON to this file instead of standard output.")

    def handle_customer(self, customer: Customer, *, out: str | None, **options) -> None:
        body = json.dumps(customer_export(customer=customer), indent=2, ensure_ascii=False)
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(body + "\n")
            self.stderr.write(f"Wrote the personal data of {customer.external_id} to {out}.")
        else:
            self.stdout.write(body)
