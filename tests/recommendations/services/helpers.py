"""Helpers shared by the scoring and command tests."""
from pathlib import Path

from recommendations.engine.data import build_dataset
from recommendations.engine.models import BUY_AGAIN_DIR, BuyAgain, load_buy_again
from recommendations.models import ModelVersion
from recommendations.selectors import catalogue_item_ids, training_events


def buy_again_ranker_ensure(version: ModelVersion) -> ModelVersion:
    """The version's artefact with a buy-again ranker next to the discover model: training writes
    one; when this version's training did not, it is fitted here from the same events."""
    if load_buy_again(version.artifact_path) is None:
        dataset, _ = build_dataset(training_events(), item_keys=[str(i) for i in catalogue_item_ids()])
        BuyAgain().fit(dataset).save(Path(version.artifact_path) / BUY_AGAIN_DIR)
    return version
