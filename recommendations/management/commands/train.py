import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.models import TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.locks import TrainingBusy
from recommendations.services.training import (
    TrainingError,
    algorithm_choices,
    progress_listeners,
    training_run_enqueue,
)


class Command(BaseCommand):
    help = (
        "Embed changed items, train a recommender on the CRM's interactions, compare it with the active "
        "version on the same leave-last-out split, and (if it wins, or with --activate) score every customer "
        "and activate it. Without a broker it runs here; with CELERY_BROKER_URL it is queued on the gpu "
        "queue. Run nightly from cron or Celery beat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--algorithm", default="auto", choices=algorithm_choices())
        parser.add_argument("--activate", action="store_true", help="Activate even if it does not beat the active one.")
        parser.add_argument("--params", default="{}", help="Hyper-parameters as JSON, e.g. '{\"max_epochs\": 5}'.")
        parser.add_argument(
            "--if-no-active", action="store_true", help="Do nothing when a version is already serving (demo set-up)."
        )

    def handle(self, *args, algorithm: str, activate: bool, params: str, if_no_active: bool, **options):
        if if_no_active and model_version_active() is not None:
            self.stdout.write("A model version is already active; nothing to do.")
            return
        try:
            overrides = json.loads(params)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(overrides, dict):
            raise CommandError("--params must be a JSON object.")
        bar = tqdm(total=100, unit="%", desc="training", disable=None, bar_format="{desc}: {percentage:3.0f}%|{bar}|")

        def listener(run: TrainingRun, message: str) -> None:
            bar.set_description_str(run.stage or "training")
            bar.update(max(0, round(run.progress * 100) - bar.n))

        progress_listeners.append(listener)
        try:
            run = training_run_enqueue(algorithm=algorithm, activate=activate, params=overrides)
        except (TrainingError, TrainingBusy, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress_listeners.remove(listener)
            bar.close()
        run.refresh_from_db()
        if run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING):
            # Handed to a worker (a fast one may already have started it): this process is done.
            self.stdout.write(f"Training run {run.pk} queued (task {run.task_id or 'pending'}).")
            return
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(f"Training run {run.pk} failed: {run.error}")
        version = run.model_version
        test = version.metrics.get("test", {})
        discover = version.metrics.get("tasks", {}).get("discover", {})
        expected = (f"expected ndcg@10 of the served list={discover['expected_ndcg@10']:.4f} "
                    f"± {discover['expected_ndcg@10_se']:.4f}; " if "expected_ndcg@10" in discover else "")
        self.stdout.write(run.log)
        self.stdout.write(
            self.style.SUCCESS(
                f"Model v{version.pk} ({version.algorithm}) test ndcg@10={test.get('ndcg@10', 0):.4f} "
                f"hr@10={test.get('hr@10', 0):.4f}; {expected}"
                + ("active now." if version.is_active or run.promoted or run.force_activate else "not promoted.")
            )
        )
