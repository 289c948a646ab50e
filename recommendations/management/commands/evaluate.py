import json

from django.core.management.base import BaseCommand, CommandError

from recommendations.services.evaluation import evaluate_algorithms
from recommendations.services.training import TrainingError, algorithm_choices


class Command(BaseCommand):
    help = (
        "Evaluate algorithms offline on the CRM's interactions with full ranking (no sampled negatives), per "
        "task: discover (new items of the held-out order, bought items excluded) and buy_again (its repeat "
        "items among the customer's own). Protocols: leave-last-out (each customer's last ORDER = test) or "
        "time-window (first order in --window-days after a cut-off). Prints task, metric and standard error; "
        "--json writes everything. Changes nothing that is served."
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
        cols = [f"ndcg@{k}", f"hr@{k}", "mrr", f"cold_hr@{k}"]
        header = f"{'task':<10}{'algorithm':<15}" + "".join(f"{c + ' ± se':>20}" for c in cols)
        self.stdout.write(header + f"{'targets':>9}{'fit s':>8}")
        for task, rows in results["tasks"].items():
            for name, m in rows.items():
                cells = "".join(
                    f"{m.get(c, float('nan')):>11.4f} ± {m.get(c + '_se', float('nan')):.4f}" for c in cols
                )
                self.stdout.write(f"{task:<10}{name:<15}{cells}{m['n_targets']:>9}{m['fit_seconds']:>8.1f}")
        self.stdout.write(
            f"discover targets: {results['targets']}, buy_again targets: {results['repeat_targets']} ({protocol}); "
            "± = standard error, clustered by customer"
        )
        if json_out:
            with open(json_out, "w") as handle:
                json.dump(results, handle, indent=2)
            self.stdout.write(f"Wrote {json_out}")
