"""Scoring a version with cold slots chooses each customer's cold picks once per batch: the scorer's
choice makes both the list and the "new in store" reasons (it used to be made a second time for the
reasons)."""

import pytest
from django.core.management import call_command

from recommendations.engine.cold_slots import ColdSlots, ColdSlotsConfig
from recommendations.models import Recommendation
from recommendations.selectors import model_version_active
from recommendations.services.scoring import _load, loaded_version, model_version_rescore
from recommendations.services.training import dataset_from_crm


@pytest.fixture
def cold_slot_version(transactional_db, shop):
    """The active popularity version of the shop, saved with 2 cold slots (cold: < 5 events)."""
    call_command("train", "--algorithm", "popularity", "--activate")
    version = model_version_active()
    data = dataset_from_crm()
    model = loaded_version(version).model
    model.set_cold_stage(ColdSlots(ColdSlotsConfig(slots=2), data.embeddings, data.dataset.item_counts()),
                         data.dataset)
    model.save(version.artifact_path)
    _load.cache_clear()
    return version


def test_new_in_store_reasons_name_cold_picks_only(cold_slot_version):
    """The reasons come from the scorer's picks: rows say "new in store, like X" and every such row's
    item is a cold one (the stage picks nothing else)."""
    # given
    data = dataset_from_crm(with_embeddings=False)
    cold = {int(key) for key, n in zip(data.dataset.item_keys, data.dataset.item_counts(), strict=True) if n < 5}
    # when
    rescored = model_version_rescore()
    # then
    rows = list(Recommendation.objects.filter(model_version=rescored, list=Recommendation.List.DISCOVER)
                .values_list("item_id", "reason"))
    new_in_store = [item for item, reason in rows if reason.startswith("new in store, like ")]
    assert new_in_store, "the fixture must serve cold picks"
    assert set(new_in_store) <= cold


def test_cold_picks_are_chosen_once_per_scored_customer(cold_slot_version, cold_choices):
    # given: every call of the stage's choice counted from here on
    cold_choices.clear()
    # when
    rescored = model_version_rescore()
    # then: one choice per customer scored (one batch here: one call), not one for the list and
    # another for the reasons
    scored = (Recommendation.objects.filter(model_version=rescored, list=Recommendation.List.DISCOVER)
              .values("customer").distinct().count())
    assert scored > 0
    assert sum(cold_choices) == scored
    assert len(cold_choices) == 1
