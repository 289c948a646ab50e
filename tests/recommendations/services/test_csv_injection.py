"""Issue 8, finding 9: ``export_recommendations`` writes no cell a spreadsheet would evaluate."""
from __future__ import annotations

import csv

from django.core.management import call_command

from crm.models import Customer, Item


def test_export_recommendations_neutralises_formula_ids(transactional_db, shop, tmp_path):
    # given: ids chosen by whoever feeds the API or the import
    Customer.objects.filter(external_id="c00").update(external_id="=HYPERLINK(\"https://evil.example\")")
    Item.objects.filter(sku="coffee-5").update(sku="@SUM(A1:A2)")
    call_command("train", "--algorithm", "popularity", "--activate")
    out = tmp_path / "recs.csv"
    # when
    call_command("export_recommendations", "--k", "24", "--include-seen", str(out))
    # then
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["customer_id"] for r in rows} >= {"'=HYPERLINK(\"https://evil.example\")", "c01"}
    assert "'@SUM(A1:A2)" in {r["item_id"] for r in rows}
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
