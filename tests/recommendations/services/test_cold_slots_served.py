"""A version with cold slots: the stored list, the exported list and the engine's served list are
the same list, and the slot items say they are new."""

import csv

import numpy as np
from django.core.management import call_command

from crm.models import Customer, Item
from recommendations.engine.cold_slots import ColdSlots, ColdSlotsConfig
from recommendations.models import Recommendation
from recommendations.selectors import model_version_active
from recommendations.services.scoring import _load, loaded_version
from recommendations.services.training import dataset_from_crm


def test_stored_and_exported_lists_are_the_engines_served_list(transactional_db, shop, tmp_path):
    # given: the active popularity version, saved with 2 cold slots (cold = fewer than 5 events)
    call_command("train", "--algorithm", "popularity", "--activate")
    version = model_version_active()
    data = dataset_from_crm()
    model = loaded_version(version).model
    assert model.item_keys == list(data.dataset.item_keys)
    model.set_cold_stage(ColdSlots(ColdSlotsConfig(slots=2), data.embeddings, data.dataset.item_counts()),
                         data.dataset)
    model.save(version.artifact_path)
    _load.cache_clear()
    # when
    call_command("score")
    out = tmp_path / "recs.csv"
    call_command("export_recommendations", "--k", "10", str(out))
    # then: the engine's served scores over each customer's history, bought items excluded
    active = model_version_active()
    served = loaded_version(active)
    assert served.model.cold_stage is not None and served.model.cold_stage.config.slots == 2
    sku = dict(Item.objects.values_list("id", "sku"))
    external = dict(Customer.objects.values_list("id", "external_id"))
    exported: dict[str, list[str]] = {}
    with open(out, newline="") as handle:
        for row in csv.DictReader(handle):
            exported.setdefault(row["customer_id"], []).append(row["item_id"])
    cold_served = 0
    for customer in Customer.objects.all():
        history = [served.item_index[i] for i in customer.interactions.order_by("occurred_at", "id")
                   .values_list("item_id", flat=True)]
        scores = served.model.served_score_histories([history])[0].copy()
        scores[history] = -np.inf
        order = [i for i in np.argsort(-scores, kind="stable") if np.isfinite(scores[i])][:10]
        expected = [sku[int(served.item_ids[i])] for i in order]
        stored = list(Recommendation.objects.filter(model_version=active, customer=customer,
                                                    list=Recommendation.List.DISCOVER)
                      .order_by("rank").values_list("item__sku", flat=True))[:10]
        assert stored == expected
        assert exported[external[customer.pk]] == expected
        cold_served += int(served.model.cold_stage.cold[order].sum())
    assert cold_served > 0
    # the cold items the stage chose say so: "new in store, like X" (or "new, similar to X" when
    # nobody bought them at all)
    stored = Recommendation.objects.filter(model_version=active, list=Recommendation.List.DISCOVER)
    said_new = [r for r in stored if r.reason.startswith("new in store, like ")]
    assert said_new and all(served.model.cold_stage.cold[served.item_index[r.item_id]] for r in said_new)
