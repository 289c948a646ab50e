"""Scoring split over several workers (shards) stores exactly what one process stores."""
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.partitions import version_storage_attach
from recommendations.services.scoring import customer_shards, model_version_score_shard
from recommendations.services.training import training_run_execute


def _rows(version):
    return list(Recommendation.objects.filter(model_version=version).order_by("customer_id", "list", "rank")
                .values_list("customer_id", "list", "rank", "item_id", "score", "probability", "reason"))


def test_three_shards_store_the_same_lists_as_one(shop):
    run = TrainingRun.objects.create(algorithm="ease", force_activate=True)
    training_run_execute(run=run)
    served = model_version_active()
    one, three = (ModelVersion.objects.create(algorithm=served.algorithm, artifact_path=served.artifact_path,
                                              status=ModelVersion.Status.SCORING) for _ in range(2))
    # when: one process takes every customer; three workers take a third each (in any order)
    for lo, hi in customer_shards(shards=1):
        model_version_score_shard(version=one, lo=lo, hi=hi, now=1.7e9)
    shards = customer_shards(shards=3)
    assert len(shards) == 3
    for lo, hi in reversed(shards):
        model_version_score_shard(version=three, lo=lo, hi=hi, now=1.7e9)
    for version in (one, three):  # what the chord callback does (PostgreSQL: attach the partition)
        version_storage_attach(version.pk)
    # then
    assert _rows(one) and _rows(one) == _rows(three)
