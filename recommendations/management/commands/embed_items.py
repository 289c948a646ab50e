from django.core.management.base import BaseCommand
from tqdm import tqdm

from recommendations.services.embedding import item_embeddings_refresh


class Command(BaseCommand):
    help = "Embed the text of every new or changed item with the configured language model (train does this too)."

    def handle(self, *args, **options):
        bar = tqdm(total=0, unit="item", desc="embedding", disable=None)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        counts = item_embeddings_refresh(progress=progress)
        bar.close()
        self.stdout.write(self.style.SUCCESS(f"{counts['embedded']} embedded, {counts['unchanged']} unchanged."))
