import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from campaigns.demo import demo_campaign_create
from crm.demo import demo_data_create, demo_now
from crm.models import Customer
from recommendations.labels import metric_label
from recommendations.models import TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.training import training_run_enqueue


class Command(BaseCommand):
    help = (
        "The whole product on synthetic data, for a first look: a demo shop, a trained model, a sample "
        "campaign sent into the file outbox, and an admin login. Safe to run again (it adds nothing twice)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=500)
        parser.add_argument("--items", type=int, default=300)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--algorithm", default="auto", help="What to train (default: the best of all, auto).")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default=None, help="Default: a fresh random password.")

    def handle(self, *args, customers: int, items: int, seed: int, algorithm: str, username: str, password: str | None,
               **options):
        if customers < 1 or items < 1:
            raise CommandError("--customers and --items must be at least 1.")
        out = self.stdout.write
        # The language model's loader draws progress bars of its own; the summary says what matters.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        try:
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover - the text model is optional
            pass
        if Customer.objects.exists():
            out(f"1/4 Shop: {Customer.objects.count():,} customers already there, left as they are.")
        else:
            report = demo_data_create(customers=customers, items=items, seed=seed, now=demo_now())
            out(f"1/4 Shop: {report.customers:,} customers, {report.items:,} items, {report.interactions:,} events "
                f"({report.elapsed_s:.0f} s).")
        active = model_version_active()
        if active is None:
            out("2/4 Training (a few minutes on a CPU)...")
            try:
                run = training_run_enqueue(algorithm=algorithm)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            run.refresh_from_db()
            if run.status != TrainingRun.Status.SUCCEEDED:
                raise CommandError(f"Training run {run.pk} did not succeed ({run.status}): {run.error}")
            for line in run.log.splitlines():
                if "validation ndcg" in line or line.split("] ", 1)[-1].startswith("winner"):
                    out("    " + line.split("] ", 1)[-1])
            active = model_version_active()
        if active is not None:
            test = active.metrics.get("test", {})
            out(f"2/4 Model v{active.pk} ({active.algorithm}) serving: {metric_label('hr@10')} "
                f"{test.get('hr@10', 0):.1%}.")
        campaign = demo_campaign_create(seed=seed)
        if campaign is None:
            out("3/4 Sample campaign: already there.")
        else:
            out(f"3/4 Sample campaign \"{campaign.campaign.name}\": {campaign.sent:,} e-mails written to "
                f"{campaign.outbox}, {campaign.holdout:,} customers held out.")
        password = password or secrets.token_urlsafe(9)
        user, _created = get_user_model().objects.get_or_create(username=username,
                                                                defaults={"email": f"{username}@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        out("4/4 Admin user ready.")
        url = settings.SITE_URL.rstrip("/") + "/admin/"
        out(f"    The e-mails: {url}campaigns/campaign/outbox/")
        out(self.style.SUCCESS(f"\n  Open {url}\n  user: {username}   password: {password}\n"))
