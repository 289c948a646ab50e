import json

from django.core.management.base import BaseCommand, CommandError

from recommendations.services.evaluation import evaluate_algorithms
from recommendations.services.training import TrainingError, algorithm_choices


class Command(BaseCommand):
    help = (
        "Evaluate algorithms offline on the CRM's interactions with full ranking (no sampled negatives): "
        "leave-last-out (last event per customer = test) or time-window (--window-days of events after a "
        "cut-off). Prints a table; --json writes the metrics. Changes nothing that is served."
    )

    def add_arguments(self, parser):
        parser.add_argument("--protocol", choices=["leave-last-out", "time-window"], default="leave-last-out")
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument(
            "--algorithm",
            action="append",
            choices=algorithm_choices()[1:],
            help="Repeat to compare several (default: the active version's and popularity).",
        )
        parser.add_argument("--window-days", type=float, default=7.0)
        parser.add_argument("--json", dest="json_out", default=None)

    def handle(self, *args, protocol, k, algorithm, window_days, json_out, **options):
        if k < 1:
            raise CommandError("--k must be at least 1.")
        try:
            results = evaluate_algorithms(algorithms=algorithm, protocol=protocol, k=k, window_days=window_days)
        except (TrainingError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        cols = [f"hr@{k}", f"ndcg@{k}", "mrr", f"coverage@{k}", f"cold_hr@{k}", "fit_seconds"]
        self.stdout.write(f"{'algorithm':<12}" + "".join(f"{c:>14}" for c in cols))
        for name, metrics in results["algorithms"].items():
            self.stdout.write(f"{name:<12}" + "".join(f"{metrics.get(c, float('nan')):>14.4f}" for c in cols))
        self.stdout.write(f"targets: {results['targets']} ({protocol})")
        if json_out:
            with open(json_out, "w") as handle:
                json.dump(results, handle, indent=2)
            self.stdout.write(f"Wrote {json_out}")
