import csv
import sys
from contextlib import nullcontext

from django.core.management.base import BaseCommand, CommandError

from crm.csv_safety import csv_row
from recommendations.models import Recommendation
from recommendations.selectors import model_version_active
from recommendations.services.export import NO_ACTIVE, recommendations_export_rows

LISTS = {"discover": Recommendation.List.DISCOVER, "buy-again": Recommendation.List.BUY_AGAIN}


class Command(BaseCommand):
    help = (
        "Write the active version's top-K per customer as CSV (customer_id,rank,item_id,score with the CRM's "
        "external ids and SKUs). --list discover (default): products the customer has not bought; "
        "--exclude-seen (default) drops every item the customer already interacted with, --include-seen keeps "
        "them. --list buy-again: the customer's own purchases, ranked by when they will need them again. "
        "Inactive and out-of-stock items are never exported."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", help="Output CSV path, or - for stdout.")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument(
            "--list", dest="list_name", default="discover", choices=sorted(LISTS),
            help="Which list: discover (default) or buy-again.",
        )
        seen = parser.add_mutually_exclusive_group()
        seen.add_argument("--exclude-seen", dest="exclude_seen", action="store_true", default=None)
        seen.add_argument("--include-seen", dest="exclude_seen", action="store_false")

    def handle(self, *args, out: str, k: int, list_name: str, exclude_seen: bool | None, **options):
        if k < 1:
            raise CommandError("--k must be at least 1.")
        if list_name == "buy-again" and exclude_seen:
            raise CommandError("--exclude-seen contradicts --list buy-again: that list is made of bought items.")
        if model_version_active() is None:
            raise CommandError(NO_ACTIVE)
        try:
            rows = recommendations_export_rows(
                k=k, exclude_seen=exclude_seen is not False, list_name=LISTS[list_name]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            target = nullcontext(sys.stdout) if out == "-" else open(out, "w", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc}") from exc
        n = 0
        with target as stream:
            writer = csv.writer(stream)
            writer.writerow(["customer_id", "rank", "item_id", "score"])
            for row in rows:
                writer.writerow(csv_row(row))  # ids starting = + - @ cannot become formulas
                n += 1
        self.stderr.write(f"Wrote {n} rows to {out}.")
