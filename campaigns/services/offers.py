"""Offer-list exports: a campaign run's per-customer offers as CSV or JSON."""
from __future__ import annotations

import csv
import json
from typing import TextIO

from campaigns.models import Campaign
from campaigns.selectors import campaign_offers
from crm.csv_safety import csv_dict

FORMATS = ("csv", "json")
OFFER_FIELDS = ["customer_id", "email", "rank", "item_id", "title", "price", "url", "score", "probability", "reason"]
BAD_FORMAT = "Unknown format {value!r}: use one of csv, json."


def campaign_offers_export(*, campaign: Campaign, fmt: str, out: TextIO, run: int | None = None) -> int:
    """Write the offers to ``out``; returns the number of offer rows."""
    if fmt not in FORMATS:
        raise ValueError(BAD_FORMAT.format(value=fmt))
    rows = campaign_offers(campaign=campaign, run=run)
    if fmt == "json":
        json.dump({"campaign_id": campaign.pk, "run": run or campaign.current_run, "offers": rows}, out, indent=1)
        out.write("\n")
    else:
        writer = csv.DictWriter(out, fieldnames=OFFER_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_dict(row) for row in rows)
    return len(rows)
