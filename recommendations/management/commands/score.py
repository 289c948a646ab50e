from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.models import ModelVersion, Recommendation
from recommendations.services.scoring import model_version_rescore


class Command(BaseCommand):
    help = (
        "Score every customer's current history with the active model (or --version) into a new version "
        "and activate it once every shard is written. Run after large imports or between trainings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--shards", type=int, default=None, help="Number of customer-id ranges (tasks).")
        parser.add_argument(
            "--model-version", dest="version", type=int, default=None, help="Model version id (default: active)."
        )

    def handle(self, *args, shards: int | None, version: int | None, **options):
        if shards is not None and shards < 1:
            raise CommandError("--shards must be at least 1.")
        source = None
        if version is not None:
            source = ModelVersion.objects.filter(pk=version).first()
            if source is None or not source.artifact_path:
                raise CommandError(f"Model version {version} does not exist or has no artefact.")
        bar = tqdm(total=0, unit="shard", desc="scoring", disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            scored = model_version_rescore(version=source, shards=shards, progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        if scored is None:
            self.stdout.write("Scoring queued; the new version activates when every shard is done.")
            return
        discover = scored.recommendations.filter(list=Recommendation.List.DISCOVER).count()
        again = scored.recommendations.filter(list=Recommendation.List.BUY_AGAIN).count()
        customers = scored.recommendations.values("customer_id").distinct().count()
        self.stdout.write(self.style.SUCCESS(
            f"v{scored.pk}: {discover} discover + {again} buy-again recommendations for {customers} customers; active."
        ))
