from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from crm.demo import demo_data_create, demo_now
from crm.models import Customer


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class Command(BaseCommand):
    help = (
        "Fill the database with a synthetic shop (customers, catalogue, ~180 days of behaviour, example "
        "segments) for demos and development. Deterministic for a given --seed and --now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=500)
        parser.add_argument("--items", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--now", type=_moment, default=None,
            help="Anchor of the simulated history (ISO 8601; naive = UTC). Default: today 00:00 UTC.",
        )
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when customers already exist.")

    def handle(self, *args, customers: int, items: int, seed: int, now, if_empty: bool, **options):
        if customers < 1 or items < 1:
            raise CommandError("--customers and --items must be at least 1.")
        if if_empty and Customer.objects.exists():
            self.stdout.write("Customers already exist; demo data left as it is (--if-empty).")
            return
        report = demo_data_create(customers=customers, items=items, seed=seed, now=now or demo_now())
        self.stdout.write(self.style.SUCCESS(
            f"Demo shop: {report.customers} customers, {report.items} items, {report.interactions} events, "
            f"{report.segments} segments in {report.elapsed_s:.1f} s."
        ))
