"""TRAIN_PROCESSES > 1: the training run fits the sequential model through a real ``torchrun``
subprocess (two CPU processes, gloo), reads rank 0's artefact back and serves it; a failing worker
fails the run with the worker's own error."""

import pytest

from recommendations.engine.distributed import DistributedTrainingError
from recommendations.engine.models import load_recommender
from recommendations.models import ModelVersion, Recommendation, TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.training import training_run_execute


def _settings(settings, **overrides):
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, **overrides}


def test_two_processes_train_through_torchrun_and_serve(shop, settings):
    """The run logs each epoch as rank 0 reports it, and the version's artefact says two processes
    trained it."""
    # given
    _settings(settings, TRAIN_PROCESSES=2)
    run = TrainingRun.objects.create(algorithm="sequential", force_activate=True)
    # when
    version = training_run_execute(run=run)
    # then
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert "epoch=1" in run.log and "processes=2" in run.log
    model = load_recommender(version.artifact_path)
    assert model.fit_info["world_size"] == 2 and model.fit_info["backend"] == "gloo"
    assert model_version_active() == version and version.metrics["test"]["n_targets"] == 24
    assert Recommendation.objects.filter(model_version=version).exists()
    assert not any((settings.ARTIFACTS_DIR / "jobs").iterdir())  # the job folder is cleaned up


def test_a_failing_worker_fails_the_run_with_its_message(shop, settings):
    """A configuration the workers cannot build (64 dims over 3 heads) ends the run as failed with the
    worker's exception, not torchrun's generic report; nothing is saved."""
    # given
    _settings(settings, TRAIN_PROCESSES=2, PARAMS={"sequential": {"dim": 64, "n_heads": 3, "max_epochs": 1}})
    run = TrainingRun.objects.create(algorithm="sequential")
    # when
    with pytest.raises(DistributedTrainingError):
        training_run_execute(run=run)
    # then
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error.startswith("Distributed training failed (torchrun exit code 1): AssertionError: ")
    assert "embed_dim must be divisible by num_heads" in run.error
    assert not ModelVersion.objects.exists()


def test_a_bad_setting_fails_the_run_with_a_message(shop, settings):
    """Even under ``auto`` (where a failing candidate is only skipped) the run fails at once."""
    _settings(settings, TRAIN_PROCESSES="lots")
    run = TrainingRun.objects.create(algorithm="auto")
    with pytest.raises(ValueError):
        training_run_execute(run=run)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error == "TRAIN_PROCESSES must be a positive integer or 'auto', not 'lots'."


def test_one_process_trains_in_the_worker_itself(shop, settings):
    """The default (1) is the single-process fit: no torchrun, no process group."""
    _settings(settings, TRAIN_PROCESSES=1)
    version = training_run_execute(run=TrainingRun.objects.create(algorithm="sequential"))
    assert "world_size" not in load_recommender(version.artifact_path).fit_info
