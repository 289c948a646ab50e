"""Training runs: promotion rules, forced activation, failure isolation, the lock."""

import pytest

from recommendations.models import ModelVersion, Recommendation, TrainingRun
from recommendations.selectors import model_version_active
from recommendations.services.locks import TrainingBusy, training_lock
from recommendations.services.training import training_run_execute


def _run(algorithm: str, activate: bool = False) -> TrainingRun:
    run = TrainingRun.objects.create(algorithm=algorithm, force_activate=activate)
    training_run_execute(run=run)
    run.refresh_from_db()
    return run


def test_first_version_is_scored_and_activated(shop):
    """With nothing serving, the first trained version wins by default and serves."""
    # when
    run = _run("itemknn")
    # then
    version = model_version_active()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.promoted
    assert version == run.model_version and version.status == ModelVersion.Status.READY
    assert version.metrics["test"]["ndcg@10"] > 0
    assert {"hr@10", "mrr", "coverage@10", "cold_hr@10"} <= set(version.metrics["test"])
    assert Recommendation.objects.filter(model_version=version).values("customer").distinct().count() == 24


def test_worse_challenger_is_not_promoted(shop):
    """A challenger that loses on the same split is saved but the active version keeps serving."""
    # given
    incumbent = _run("itemknn").model_version
    # when
    run = _run("popularity")
    # then
    assert not run.promoted
    assert model_version_active() == incumbent
    assert run.model_version.status == ModelVersion.Status.TRAINED
    assert run.model_version.metrics["active_test"]["ndcg@10"] > run.model_version.metrics["test"]["ndcg@10"]


def test_activate_forces_promotion(shop):
    _run("itemknn")
    run = _run("popularity", activate=True)
    active = model_version_active()
    assert active == run.model_version
    assert active.previous is not None and active.previous.algorithm == "itemknn"


def test_auto_picks_best_on_validation(shop, settings):
    """itemknn beats popularity on these planted tastes by more than two standard errors."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["popularity", "itemknn"]}
    run = _run("auto")
    assert run.model_version.algorithm == "itemknn"
    assert set(run.model_version.metrics["candidates"]) == {"popularity", "itemknn"}


def test_failed_run_leaves_active_version_serving(shop, monkeypatch):
    """An exception mid-training marks the run failed; nothing served changes."""
    # given
    incumbent = _run("popularity").model_version
    served = list(Recommendation.objects.filter(model_version=incumbent).values_list("id", flat=True))

    def explode(*args, **kwargs):
        raise RuntimeError("GPU fell off the bus")

    monkeypatch.setattr("recommendations.services.training._fit", explode)
    # when
    run = TrainingRun.objects.create(algorithm="itemknn")
    with pytest.raises(RuntimeError):
        training_run_execute(run=run)
    # then
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "GPU fell off the bus" in run.error
    assert model_version_active() == incumbent
    assert list(Recommendation.objects.filter(model_version=incumbent).values_list("id", flat=True)) == served


def test_two_trainings_never_run_at_once(shop):
    with training_lock(), pytest.raises(TrainingBusy):
        training_run_execute(run=TrainingRun.objects.create(algorithm="popularity"))


def test_sequential_trains_end_to_end(shop):
    """The flagship trains through the same service, with text embeddings, and serves."""
    run = _run("sequential", activate=True)
    version = model_version_active()
    assert version.algorithm == "sequential"
    assert version.device == "cpu"
    assert run.model_version.metrics["test"]["n_targets"] == 24
    assert Recommendation.objects.filter(model_version=version).exists()


def test_auto_survives_a_failing_candidate(shop, settings, monkeypatch):
    """A candidate that runs out of memory is logged and skipped; the others still compete."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["ease", "itemknn"]}
    from recommendations.services import training

    real_fit = training._fit

    def fit(algorithm, *args, **kwargs):
        if algorithm == "ease":
            raise MemoryError("12,000 x 12,000 does not fit")
        return real_fit(algorithm, *args, **kwargs)

    monkeypatch.setattr(training, "_fit", fit)
    run = _run("auto")
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert run.model_version.algorithm == "itemknn"
    assert "ease failed and is skipped" in run.log
    assert run.model_version.metrics["candidates"]["ease"]["ndcg@10"] is None


def test_sqlite_lock_is_per_database(shop):
    """Another database of the same checkout training (its lock file held) does not block this one."""
    import fcntl

    from recommendations.services.locks import training_lock_path

    other = training_lock_path("/srv/other-checkout-db.sqlite3")
    assert other != training_lock_path() and other.parent == training_lock_path().parent
    other.parent.mkdir(parents=True, exist_ok=True)
    with open(other, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # "the benchmark database is training"
        run = _run("popularity")
    assert run.status == TrainingRun.Status.SUCCEEDED


def test_busy_train_command_is_a_one_line_error(transactional_db, shop):
    """A second concurrent `train` used to end in a Celery Retry traceback; now a CommandError."""
    from django.core.management import CommandError, call_command

    with training_lock(), pytest.raises(CommandError) as error:
        call_command("train", "--algorithm", "popularity")
    assert str(error.value) == "Another training run is in progress; try again when it has finished."
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED and "in progress" in run.error


def test_api_training_without_broker_answers_202_and_trains_after_the_response(transactional_db, shop):
    """POST /training-runs used to train inside the request (minutes); now 202 at once, then a thread trains."""
    import threading

    from rest_framework.test import APIClient

    from crm.services import api_key_create

    _, raw_key = api_key_create(name="ops", scopes=["admin"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    # when
    response = client.post("/api/v1/training-runs", {"algorithm": "popularity", "activate": True}, format="json")
    # then
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    worker = next((t for t in threading.enumerate() if t.name == f"training-run-{body['id']}"), None)
    if worker is not None:
        worker.join(timeout=120)
    run = TrainingRun.objects.get(pk=body["id"])
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert model_version_active() == run.model_version


def test_every_run_saves_the_buy_again_ranker_and_per_task_metrics(shop):
    """Both lists are measured on their own task, with standard errors; the ranker lies next to
    the discover model so serving can write the buy_again list."""
    from recommendations.engine.models import BuyAgain, load_buy_again

    # when
    run = _run("popularity")
    version = run.model_version
    # then
    tasks = version.metrics["tasks"]
    assert set(tasks) == {"discover", "buy_again"}
    discover = tasks["discover"]
    assert {"ndcg@10", "ndcg@10_se", "hr@10", "mrr", "mrr_se", "n_targets"} <= set(discover)
    assert discover["ndcg@10"] == version.metrics["test"]["ndcg@10"]  # flat keys mean discover
    # the served list's expected quality: validation weighted to the dates of the latest orders
    assert {"expected_ndcg@10", "expected_ndcg@10_se", "expected_customers"} <= set(discover)
    assert 0 <= discover["expected_ndcg@10"] <= 1 and discover["expected_customers"] > 0
    assert discover["valid_ndcg@10"] == version.metrics["validation"]["ndcg@10"]
    assert "expected ndcg@10 of the served list" in run.log
    assert {"frequency", "recency", "buy_again"} == set(tasks["buy_again"]["baselines"])
    ranker = load_buy_again(version.artifact_path)
    assert isinstance(ranker, BuyAgain) and ranker.n_items == len(shop["items"])


def test_auto_keeps_the_reference_unless_a_challenger_beats_it_beyond_noise(shop, settings):
    """Selection is the engine's rule: the logged verdict names the reference and the margin."""
    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "AUTO_CANDIDATES": ["popularity", "ease", "itemknn"]}
    run = _run("auto")
    candidates = run.model_version.metrics["candidates"]
    verdicts = {name: c["verdict"] for name, c in candidates.items()}
    assert sum(v.startswith("reference") for v in verdicts.values()) == 1
    chosen = run.model_version.algorithm
    assert chosen in {"popularity", "ease"} or verdicts[chosen].startswith("beats")
    assert all(c["ndcg@10_se"] is not None for c in candidates.values())
    assert "selected" in run.log


def test_evaluate_shows_task_metric_and_standard_error(shop, capsys):
    from django.core.management import call_command

    call_command("evaluate", "--algorithm", "popularity", "--algorithm", "itemknn")
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("discover", "buy_again"))]
    assert {line.split()[1] for line in lines if line.startswith("discover")} == {"popularity", "itemknn"}
    assert all("±" in line for line in lines)
    assert "standard error" in out


def test_admin_train_now_answers_at_once_and_trains_after_the_response(transactional_db, shop, client,
                                                                      django_user_model):
    """Without a broker "Train now" used to train inside the request (the page hung for minutes);
    now it redirects to the run's live page at once and a thread trains."""
    import threading

    from django.urls import reverse

    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw"))
    # when
    response = client.post(reverse("admin:recommendations_trainingrun_start"))
    # then
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:recommendations_trainingrun_change", args=[run.pk])
    worker = next((t for t in threading.enumerate() if t.name == f"training-run-{run.pk}"), None)
    if worker is not None:
        worker.join(timeout=300)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.model_version is not None


def test_the_active_version_is_measured_with_its_cold_stage_chosen_once_per_batch(shop, monkeypatch, cold_choices):
    """The comparison measures the active configuration as served (cold stage chosen on the same
    validation, like the challenger's), and the grid's choice is made once per batch of customers,
    not once per configuration."""
    from recommendations.services import training

    # given: popularity serving with cold slots chosen on validation
    incumbent = _run("popularity").model_version
    assert incumbent.metrics["cold_slots"]["chosen"]["slots"] > 0
    during_comparison: list[list[int]] = []
    compare = training._active_test_metrics

    def observed(*args, **kwargs):
        start = len(cold_choices)
        result = compare(*args, **kwargs)
        during_comparison.append(cold_choices[start:])
        return result

    monkeypatch.setattr(training, "_active_test_metrics", observed)
    # when: an item-kNN challenger is compared with it
    run = _run("itemknn")
    # then: the active configuration refit on the same split scores what it scored as the winner
    # of its own run (same data, same stage choice), cold stage included
    active = run.model_version.metrics["active_test"]
    assert active["version"] == incumbent.pk
    assert active["ndcg@10"] == incumbent.metrics["test"]["ndcg@10"]
    assert active["cold_hr@10"] == incumbent.metrics["test"]["cold_hr@10"]
    # one choice for the grid's one batch of validation customers (11 configurations; it was 10
    # choices, one per configuration with slots) and one for the test pass's batch
    assert len(during_comparison) == 1 and len(during_comparison[0]) == 2
