"""Drive campaigns from a shell or a script: create, build, send, schedule, results, offers.

    python manage.py campaign create --name "Spring picks" [--segment NAME] [--items 5] [--holdout 0.1]
        [--list discover|buy-again]
    python manage.py campaign build ID
    python manage.py campaign send ID [--async]
    python manage.py campaign pause|resume|cancel ID
    python manage.py campaign schedule ID (--at 2026-05-01T09:00:00+00:00 | --cron "0 9 * * 1")
    python manage.py campaign results ID [--json]
    python manage.py campaign offers ID --format csv|json [--out FILE]

``create`` prints the new campaign's id alone on stdout. ``send`` sends in this process (batches,
retries) unless ``--async`` enqueues Celery tasks; running it again never re-sends anyone.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from campaigns.models import Campaign
from recommendations.models import Recommendation

LISTS = {"discover": Recommendation.List.DISCOVER, "buy-again": Recommendation.List.BUY_AGAIN}


class Command(BaseCommand):
    help = "Create, build, send, schedule campaigns; print results; export offer lists."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a draft e-mail campaign; prints its id.")
        create.add_argument("--name", required=True)
        create.add_argument("--segment", help="Audience: the name of a saved segment (default: everyone).")
        create.add_argument("--items", type=int, default=5, help="Items per customer (1-50).")
        create.add_argument("--holdout", type=float, default=0.1, help="Holdout share, 0..1.")
        create.add_argument("--channel", choices=[c.value for c in Campaign.Channel], default="email")
        create.add_argument("--category", default="", help="Only items of this category.")
        create.add_argument("--list", dest="list_name", choices=sorted(LISTS), default="discover",
                            help="Which recommendation list fills the item block (default: discover).")
        for action in ("build", "send", "results", "offers", "schedule", "pause", "resume", "cancel"):
            p = sub.add_parser(action)
            p.add_argument("id", type=int)
            if action == "send":
                p.add_argument("--async", dest="asynchronous", action="store_true",
                               help="Enqueue Celery tasks instead of sending in this process.")
            if action == "results":
                p.add_argument("--json", action="store_true", help="Print JSON.")
                p.add_argument("--run", type=int)
            if action == "offers":
                p.add_argument("--format", dest="fmt", choices=["csv", "json"], default="csv")
                p.add_argument("--out", help="File to write (default: stdout).")
            if action == "schedule":
                when = p.add_mutually_exclusive_group(required=True)
                when.add_argument("--at", help="ISO 8601 send time (one-off).")
                when.add_argument("--cron", help='Crontab "minute hour day month weekday" (recurring).')

    def handle(self, *args, action: str, **options) -> None:
        if action == "create":
            return self._create(options)
        campaign = Campaign.objects.filter(pk=options["id"]).first()
        if campaign is None:
            raise CommandError(f"No campaign with id {options['id']}.")
        try:
            getattr(self, f"_{action}")(campaign, options)
        except ValueError as exc:  # service errors carry a user-facing message
            raise CommandError(str(exc)) from exc

    def _create(self, options) -> None:
        from crm.models import Segment

        segment = None
        if options["segment"]:
            segment = Segment.objects.filter(name=options["segment"]).first()
            if segment is None:
                raise CommandError(f"No segment named {options['segment']!r}.")
        if not 1 <= options["items"] <= 50:
            raise CommandError("--items must be between 1 and 50.")
        if not 0 <= options["holdout"] <= 1:
            raise CommandError("--holdout must be between 0 and 1.")
        campaign = Campaign.objects.create(
            name=options["name"], audience=segment, n_items=options["items"], holdout_share=options["holdout"],
            channel=options["channel"], filter_category=options["category"],
            recommendation_list=LISTS[options["list_name"]],
        )
        self.stdout.write(str(campaign.pk))

    def _build(self, campaign: Campaign, options) -> None:
        from campaigns.services.build import campaign_build

        result = campaign_build(campaign=campaign)
        self.stderr.write(f"built run {result.run} in {result.seconds:.1f}s: {result.by_state}")
        self.stdout.write(json.dumps(asdict(result)))

    def _send(self, campaign: Campaign, options) -> None:
        from campaigns.services.send import campaign_send

        report = campaign_send(campaign=campaign, wait=not options["asynchronous"])
        if report.in_doubt:
            self.stderr.write(
                f"{report.in_doubt} recipient(s) in doubt (claimed, never confirmed): not re-sent; "
                "reconcile them in the admin (Recipients, state 'sending')."
            )
        self.stdout.write(json.dumps(asdict(report)))

    def _schedule(self, campaign: Campaign, options) -> None:
        from campaigns.services.schedule import campaign_schedule

        send_at = None
        if options["at"]:
            try:
                send_at = datetime.fromisoformat(options["at"])
            except ValueError as exc:
                raise CommandError(f"--at: not an ISO 8601 time: {options['at']!r}.") from exc
            if send_at.tzinfo is None:
                raise CommandError("--at needs a UTC offset, e.g. 2026-05-01T09:00:00+00:00.")
        campaign_schedule(campaign=campaign, send_at=send_at, crontab=options["cron"])
        self.stdout.write(f"campaign {campaign.pk} scheduled")

    def _pause(self, campaign: Campaign, options) -> None:
        from campaigns.services.schedule import campaign_pause

        campaign_pause(campaign=campaign)
        self.stdout.write(f"campaign {campaign.pk} is {campaign.status}")

    def _resume(self, campaign: Campaign, options) -> None:
        from campaigns.services.schedule import campaign_resume

        campaign_resume(campaign=campaign)
        self.stdout.write(f"campaign {campaign.pk} is {campaign.status}")

    def _cancel(self, campaign: Campaign, options) -> None:
        from campaigns.services.schedule import campaign_cancel

        campaign_cancel(campaign=campaign)
        self.stdout.write(f"campaign {campaign.pk} is {campaign.status}")

    def _results(self, campaign: Campaign, options) -> None:
        from campaigns.services.results import campaign_results

        results = campaign_results(campaign=campaign, run=options["run"])
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=1))
            return
        for key, value in results.items():
            self.stdout.write(f"{key:>20}: {value}")

    def _offers(self, campaign: Campaign, options) -> None:
        from campaigns.services.offers import campaign_offers_export

        if options["out"]:
            with open(options["out"], "w", newline="", encoding="utf-8") as out:
                n = campaign_offers_export(campaign=campaign, fmt=options["fmt"], out=out)
            self.stderr.write(f"{n} offers written to {options['out']}")
        else:
            campaign_offers_export(campaign=campaign, fmt=options["fmt"], out=self.stdout._out or sys.stdout)
