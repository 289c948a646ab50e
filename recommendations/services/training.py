"""Training runs: CRM -> dataset -> candidates -> evaluation against the active version -> promotion.

A run never touches what is being served until its new version is scored in full; a failed or
killed run leaves the active version serving. Two trainings never run at once (``training_lock``).

Protocol: temporal leave-last-BASKET-out (an order never has its own lines in the input). Candidates
are fit on ``split.train`` with each customer's second-to-last order as validation (early stopping);
``auto`` chooses with the engine's one selection rule (``engine.train.select_best``: the best of
popularity and EASE unless another candidate beats it by more than two paired standard errors on the
discover validation targets). The winner and the active version's configuration, refit on the same
``split.train``, are both measured on the last orders' new items (``split.test``, full ranking, bought
items excluded: the discover list as served). The challenger is promoted when its test NDCG@10 is at
least the active one's (a tie promotes: same quality on fresher data). The served model keeps the
parameters learnt on ``split.train`` and scores from each customer's full history. Every run also fits
the buy-again ranker (``engine.train.fit_buy_again``) and saves it in ``<artifact_path>/buy_again/``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ..conf import recommendations_settings
from ..engine import distributed
from ..engine.data import Dataset, Split, build_dataset, leave_last_out_split
from ..engine.device import resolve_device
from ..engine.metrics import evaluate, evaluate_ranks, ndcg_gains
from ..engine.models import ALGORITHMS, BUY_AGAIN_DIR, Recommender, calibrate, make_recommender
from ..engine.tasks import LIST_BUY_AGAIN, LIST_DISCOVER
from ..engine.train import (
    cold_stage_attach,
    cold_stage_carry,
    discover_task_metrics,
    fit_buy_again,
    select_best,
    selection_report,
    served_list_estimate,
    served_list_expected,
)
from ..models import ModelVersion, TrainingRun
from ..selectors import catalogue_item_ids, model_version_active, training_events
from .embedding import item_embedding_matrix, item_embeddings_refresh
from .erasure import artifact_forget_erased
from .locks import TrainingBusy, training_lock

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "ndcg@10"
# cheap to refit; the sequential model is not
REFIT_ON_ALL = frozenset({"popularity", "trending", "itemknn", "ease", "ease_trending"})
SEQUENTIAL_MAX_EPOCHS = 40  # progress is drawn against this when params do not say
NO_DATA = "There are no interactions to train on yet: import or record some events first."
UNKNOWN_ALGORITHM = "Unknown algorithm {name!r}; choose auto or one of: {choices}."

__all__ = [
    "TrainingBusy",
    "TrainingError",
    "training_run_enqueue",
    "training_run_execute",
    "dataset_from_crm",
]


class TrainingError(RuntimeError):
    pass


@dataclass
class CrmDataset:
    dataset: Dataset
    split: Split
    item_ids: list[int]
    cleaning: dict[str, Any]
    embeddings: np.ndarray | None = None
    stats: dict[str, Any] = field(default_factory=dict)


def algorithm_choices() -> list[str]:
    return ["auto", *ALGORITHMS]


def algorithm_params(algorithm: str, overrides: dict | None = None) -> dict:
    conf = recommendations_settings()
    params = dict(conf.PARAMS.get(algorithm, {}))
    params.update(overrides or {})
    if algorithm in ("ease", "ease_trending"):
        params.setdefault("max_items", conf.EASE_MAX_ITEMS)
    if algorithm == "sequential":
        params.setdefault("device", conf.DEVICE)
        # The wall-clock budget keeps a CPU-only nightly run bounded; a GPU trains to early stopping.
        try:
            on_gpu = resolve_device(params["device"]).type == "cuda"
        except ValueError:  # a device this machine lacks: the fit itself reports it
            on_gpu = False
        params.setdefault("max_train_seconds", None if on_gpu else conf.SEQUENTIAL_TIME_BUDGET_SECONDS)
    return params


MIN_SEQUENTIAL_SECONDS = 60.0  # the least a time-capped sequential fit gets (a couple of CPU epochs)
RESERVE_FIXED_SECONDS = 30.0  # saving the artefacts, the partition attach, activation
# Validation passes after the last candidate's fit: calibration, the cold-slot choice (one pass for the
# winner's own top lists; the configurations are then compared on those) and the test pass of the
# winner (the sequential fit's own time cap covers its validation pass, see engine/models/sequential.py).
POST_FIT_PASSES = 3.0
# Scoring and storing one customer's two lists costs about this many times what a validation pass
# spends per customer (measured on Ta Feng: 0.74 ms of CPU per customer scored and stored, 0.18 ms per
# customer in EASE's validation pass; see docs/recommendations.md).
SCORING_PASS_FACTOR = 4.0


def reserve_seconds(eval_seconds: float, n_customers: int, n_valid_customers: int, refit_seconds: float = 0.0) -> float:
    """Seconds the run still needs after its last candidate's fit (whose own time cap covers its
    validation pass): calibration and the test pass, scoring every customer (a validation pass scores
    ``n_valid_customers``), refitting the winner on every event (``refit_seconds``), plus a fixed part.
    ``eval_seconds``: the slowest validation pass measured so far, so the estimate follows the data,
    the device and the load of the machine."""
    passes = POST_FIT_PASSES + SCORING_PASS_FACTOR * n_customers / max(1, n_valid_customers)
    return RESERVE_FIXED_SECONDS + passes * max(0.0, eval_seconds) + max(0.0, refit_seconds)


def sequential_budget(cap: float | None, seconds_left: float, reserve: float) -> float | None:
    """The time cap of a sequential fit: what is left of the run's budget after ``reserve``, never
    more than its own ``cap`` nor less than ``MIN_SEQUENTIAL_SECONDS``. ``cap`` None (a GPU): none."""
    if cap is None:
        return None
    return float(min(cap, max(MIN_SEQUENTIAL_SECONDS, seconds_left - reserve)))


def dataset_from_crm(*, with_embeddings: bool = True) -> CrmDataset:
    """Build the engine's arrays from the CRM; the item space is the whole catalogue."""
    conf = recommendations_settings()
    item_ids = catalogue_item_ids()
    dataset, report = build_dataset(
        training_events(),
        kind_weights=conf.KIND_WEIGHTS,
        min_user_events=conf.MIN_USER_EVENTS,
        min_item_events=conf.MIN_ITEM_EVENTS,
        item_keys=[str(i) for i in item_ids],
    )
    if dataset.n_events == 0:
        raise TrainingError(NO_DATA)
    split = leave_last_out_split(dataset)
    embeddings = item_embedding_matrix(item_ids=item_ids) if with_embeddings else None
    stats = {
        "customers": dataset.n_users,
        "items": dataset.n_items,
        "events": dataset.n_events,
        "orders": int(len(np.unique(dataset.basket))),
        "valid_targets": int(len(split.valid)),
        "test_targets": int(len(split.test)),
        "test_repeat_targets": int(len(split.test_repeat)),
        "cleaning": report.as_dict(),
    }
    return CrmDataset(dataset, split, item_ids, report.as_dict(), embeddings, stats)


def _embeddings(data: CrmDataset) -> np.ndarray | None:
    return data.embeddings if data.embeddings is not None and data.embeddings.any() else None


def _fit(algorithm: str, params: dict, data: CrmDataset, progress: Callable[[dict], None] | None) -> Recommender:
    embeddings = _embeddings(data)
    if algorithm in distributed.ALGORITHMS:
        processes = distributed.processes_resolve(recommendations_settings().TRAIN_PROCESSES)
        if processes > 1:
            return _fit_distributed(algorithm, params, data, embeddings, progress, processes)
    model = make_recommender(algorithm, params)
    return model.fit(data.split.train, item_embeddings=embeddings, valid=data.split.valid,
                     valid_now=data.split.valid_now, progress=progress)


def _fit_distributed(algorithm: str, params: dict, data: CrmDataset, embeddings: np.ndarray | None,
                     progress: Callable[[dict], None] | None, processes: int) -> Recommender:
    """The same fit by ``processes`` torchrun workers (DDP) on this machine: the split's training
    events go to a job folder under the artefacts directory, rank 0's artefact is read back. A failed
    worker raises ``DistributedTrainingError`` with its exception, which fails the run.

    With several machines (``TRAIN_TORCHRUN_ARGS`` without ``--standalone``) the folder is the fixed
    ``<ARTIFACTS_DIR>/jobs/<algorithm>`` (shared storage; runs never overlap), so the other machines'
    torchrun can name it (docs/scaling.md)."""
    conf = recommendations_settings()
    jobs = conf.artifacts_dir / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    torchrun_args = list(conf.TRAIN_TORCHRUN_ARGS)
    logger.info("training %s on %d processes (torchrun %s)", algorithm, processes, " ".join(torchrun_args))
    if "--standalone" in torchrun_args:
        context = tempfile.TemporaryDirectory(dir=jobs, prefix=f"{algorithm}-")
    else:
        context = _fixed_folder(jobs / algorithm)
    with context as folder:
        job = distributed.job_write(Path(folder) / "job", data.split.train, params=params, valid=data.split.valid,
                                    item_embeddings=embeddings, algorithm=algorithm)
        return distributed.launch(job, Path(folder) / "out", processes=processes, progress=progress,
                                  torchrun_args=torchrun_args, log=lambda line: logger.debug("torchrun: %s", line))


@contextlib.contextmanager
def _fixed_folder(path: Path) -> Iterator[Path]:
    """``path``, emptied before and removed after (a killed run's leftovers never reach the next)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _test_metrics(model: Recommender, data: CrmDataset) -> dict:
    """Full-ranking metrics on the last events, scoring from histories that include validation."""
    model.set_histories(data.split.train_valid)
    return evaluate(model, data.split.train_valid, data.split.test, k=10, now=data.split.test_now)


def _log(run: TrainingRun, message: str, *, stage: str | None = None, progress: float | None = None) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    run.log += f"[{stamp}] {message}\n"
    fields = ["log"]
    if stage is not None:
        run.stage, fields = stage, [*fields, "stage"]
    if progress is not None:
        run.progress, fields = max(0.0, min(1.0, progress)), [*fields, "progress"]
    TrainingRun.objects.filter(pk=run.pk).update(**{f: getattr(run, f) for f in fields})
    logger.info("training run %s: %s", run.pk, message)
    for listener in progress_listeners:
        listener(run, message)


# Callables ``(run, message)`` told about every log line of a run in this process (the train
# command draws its progress bar with one).
progress_listeners: list[Callable[[TrainingRun, str], None]] = []


def training_run_enqueue(
    *, algorithm: str = "auto", activate: bool = False, params: dict | None = None, background: bool = False
) -> TrainingRun:
    """Record a queued run and hand it to a worker (``gpu`` queue) once the transaction commits.

    Without a broker (tasks run eagerly) the run executes in this thread, as the ``train`` command
    wants, unless ``background``: then it runs in a daemon thread of this process after commit, so
    an HTTP request answers 202 at once instead of training for minutes (``make demo``, one
    machine). Production uses a worker; a thread dies with its process (the next run marks it failed).
    """
    if algorithm not in algorithm_choices():
        raise ValueError(UNKNOWN_ALGORITHM.format(name=algorithm, choices=", ".join(algorithm_choices())))
    from crm.jobs import enqueue

    run = TrainingRun.objects.create(algorithm=algorithm, params=params or {}, force_activate=activate)

    def _send() -> None:
        if background and settings.CELERY_TASK_ALWAYS_EAGER:
            threading.Thread(
                target=_execute_in_thread, args=(run.pk,), name=f"training-run-{run.pk}", daemon=True
            ).start()
            return
        result = enqueue("recommendations.training_run_execute", run.pk)
        TrainingRun.objects.filter(pk=run.pk, task_id="").update(task_id=result.id or "")

    transaction.on_commit(_send)
    if not (background and settings.CELERY_TASK_ALWAYS_EAGER):
        run.refresh_from_db()  # the eager path has run; a background thread may still be starting
    return run


def _execute_in_thread(run_id: int) -> None:
    from crm.jobs import enqueue

    try:
        enqueue("recommendations.training_run_execute_here", run_id)
    except Exception:  # a thread has no caller to raise to: the run row already says it failed
        logger.exception("training run %s failed in its background thread", run_id)
    finally:
        connection.close()


def _select(
    run: TrainingRun, data: CrmDataset, candidates: list[str], *, deadline: float | None = None
) -> tuple[str, Recommender, dict]:
    """Fit the candidates and choose with the engine's selection rule (``select_best``): one
    pipeline for the product, the benchmarks and ``fit_recommender``. ``deadline``
    (``time.perf_counter()`` seconds): a time-capped candidate (the sequential model on a CPU) gets
    what is left before it, after :func:`reserve_seconds`."""
    logged: dict[str, float] = {}
    clock = {"fit_end": None, "eval_seconds": 0.0}
    n_valid_customers = int(len(np.unique(data.split.valid[:, 0]))) if len(data.split.valid) else 0

    evals: dict[str, float] = {}

    def validated(info: dict) -> None:
        """select_best reports each candidate after its validation pass."""
        if info.get("done") and clock["fit_end"] is not None:
            evals[info["algorithm"]] = time.perf_counter() - clock["fit_end"]
            clock["eval_seconds"] = max(clock["eval_seconds"], evals[info["algorithm"]])
            clock["fit_end"] = None

    def fit(name: str, params: dict) -> Recommender:
        if deadline is not None and params.get("max_train_seconds") is not None:
            # a closed-form winner is refit on every event before it is served: as long as its fit
            # here, scaled by the events it will see
            refit = max((logged[n] for n in logged if n in REFIT_ON_ALL), default=0.0)
            refit *= data.dataset.n_events / max(1, data.split.train.n_events)
            reserve = reserve_seconds(clock["eval_seconds"], data.dataset.n_users, n_valid_customers, refit)
            params["max_train_seconds"] = sequential_budget(
                params["max_train_seconds"], deadline - time.perf_counter(), reserve)
            _log(run, f"{name}: time budget {params['max_train_seconds']:.0f}s "
                      f"(run budget left {deadline - time.perf_counter():.0f}s, reserve {reserve:.0f}s)")
        try:
            return _fit_logged(name, params)
        finally:
            clock["fit_end"] = time.perf_counter()

    def _fit_logged(name: str, params: dict) -> Recommender:
        n = candidates.index(name)
        base = 0.15 + 0.6 * n / len(candidates)
        max_epochs = int(params.get("fixed_epochs") or params.get("max_epochs") or SEQUENTIAL_MAX_EPOCHS)

        def progress(info: dict, _base=base, _name=name, _max=max_epochs) -> None:
            if "epoch" not in info:
                return
            share = 0.6 / len(candidates) * min(1.0, info["epoch"] / _max)
            shown = {k: v for k, v in info.items() if v is not None}
            text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
            _log(run, f"{_name}: {text}", progress=_base + share)

        _log(run, f"fitting {name}", stage=f"training {name}", progress=base)
        started = time.perf_counter()
        try:
            model = _fit(name, params, data, progress)
        except (MemoryError, RuntimeError, ValueError) as exc:
            if len(candidates) == 1:
                raise
            # One candidate running out of memory (say EASE on a huge catalogue) must not sink `auto`.
            _log(run, f"{name} failed and is skipped: {exc}")
            raise RuntimeError(str(exc)) from exc
        logged[name] = time.perf_counter() - started
        return model

    if len(candidates) == 1:  # nothing to choose: fit it, errors propagate
        name = candidates[0]
        params = algorithm_params(name, run.params)
        started = time.perf_counter()
        model = fit(name, params)
        valid, expected = {}, {}
        if len(data.split.valid):
            valid, ranks = evaluate_ranks(model, data.split.train, data.split.valid, k=10, now=data.split.valid_now)
            expected = served_list_estimate(ndcg_gains(ranks, 10), data.split)
        entry = {"ndcg@10": valid.get(PRIMARY_METRIC), "ndcg@10_se": valid.get("ndcg@10_se"),
                 "fit_seconds": round(time.perf_counter() - started, 2), "verdict": "requested"}
        _log(run, f"{name}: validation ndcg@10={valid.get(PRIMARY_METRIC, 0):.4f}")
        return name, model, {"valid": valid, "candidates": {name: entry}, "selection": [], "expected": expected}

    pairs = [(name, algorithm_params(name, run.params.get(name))) for name in candidates]
    try:
        best, results = select_best(pairs, data.split, fit=fit, keep_model=True, progress=validated)
    except RuntimeError as exc:
        raise TrainingError(str(exc)) from exc
    for c in results:
        if c.error is None:
            _log(run, f"{c.algorithm}: validation ndcg@10={c.valid_metrics[PRIMARY_METRIC]:.4f}"
                      f" ± {c.valid_metrics['ndcg@10_se']:.4f} hr@10={c.valid_metrics['hr@10']:.4f}"
                      f" (fit {c.train_seconds:.1f}s, validation {evals.get(c.algorithm, 0):.1f}s): {c.verdict}")
    _log(run, f"selected {best.algorithm} (the best of popularity and EASE unless beaten beyond noise)")
    candidates_json = {
        c.algorithm: {
            "ndcg@10": c.valid_metrics.get(PRIMARY_METRIC) if c.error is None else None,
            "ndcg@10_se": c.valid_metrics.get("ndcg@10_se"),
            "fit_seconds": round(logged[c.algorithm], 2) if c.algorithm in logged else None,
            "validation_seconds": round(evals[c.algorithm], 2) if c.algorithm in evals else None,
            "verdict": c.verdict,
            **({"error": c.error} if c.error else {}),
        }
        for c in results
    }
    assert best.model is not None
    expected = served_list_estimate(best.gains, data.split) if best.gains is not None else {}
    return best.algorithm, best.model, {"valid": best.valid_metrics, "candidates": candidates_json,
                                        "selection": selection_report(results), "results": results,
                                        "expected": expected}


def _active_test_metrics(run: TrainingRun, data: CrmDataset, challenger: str, params: dict) -> dict | None:
    """The active version's configuration, refit on the same split and measured the same way."""
    active = model_version_active()
    if active is None:
        return None
    if active.algorithm == challenger and active.params == params:
        return None  # same configuration: the challenger's own numbers are the comparison
    _log(
        run,
        f"refitting the active version v{active.pk} ({active.algorithm}) on the same split",
        stage="evaluating the active version",
        progress=0.8,
    )
    try:
        model = _fit(active.algorithm, dict(active.params), data, None)
    except (ValueError, TypeError) as exc:  # an algorithm or parameter that no longer exists
        _log(run, f"could not refit the active version: {exc}")
        return None
    cold_stage_attach(model, data.split, _embeddings(data))  # measured as it would be served
    return {"version": active.pk, "algorithm": active.algorithm, **_test_metrics(model, data)}


def _artifact_dir(version: ModelVersion) -> Path:
    return recommendations_settings().artifacts_dir / "models" / f"v{version.pk}"


def _fail(run: TrainingRun, exc: BaseException) -> None:
    """Record the failure; nothing served changes (the active version was never touched)."""
    run.status, run.error, run.finished_at = TrainingRun.Status.FAILED, str(exc) or repr(exc), timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    _log(run, f"failed: {run.error}")


def training_run_execute(*, run: TrainingRun) -> ModelVersion:
    """Train, evaluate against the active version, save a version; score and activate if it wins."""
    with training_lock():
        TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).exclude(pk=run.pk).update(
            status=TrainingRun.Status.FAILED, error="The worker running it stopped.", finished_at=timezone.now()
        )
        run.status, run.started_at = TrainingRun.Status.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
        try:
            version = _train(run)
        except Exception as exc:
            _fail(run, exc)
            raise
    if run.force_activate or run.promoted:
        from .scoring import model_version_score

        _log(run, "scoring customers", stage="scoring", progress=0.9)
        try:
            model_version_score(version=version, activate=True)
        except Exception as exc:
            ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.FAILED)
            _fail(run, exc)
            raise
    run.status, run.finished_at, run.progress = TrainingRun.Status.SUCCEEDED, timezone.now(), 1.0
    run.stage = "done"
    run.save(update_fields=["status", "finished_at", "progress", "stage"])
    _log(run, "done")
    return version


def _train(run: TrainingRun) -> ModelVersion:
    distributed.processes_resolve(recommendations_settings().TRAIN_PROCESSES)  # a bad setting fails up front
    timings: dict[str, float] = {}
    clock = started = time.perf_counter()
    _log(run, "embedding item texts", stage="embedding items", progress=0.02)
    counts = item_embeddings_refresh()
    timings["embed_seconds"] = round(time.perf_counter() - clock, 2)
    _log(run, f"embedded {counts['embedded']} of {counts['items']} items ({timings['embed_seconds']}s)")

    clock = time.perf_counter()
    data = dataset_from_crm()
    timings["dataset_seconds"] = round(time.perf_counter() - clock, 2)
    _log(
        run,
        f"dataset: {data.stats['customers']} customers, {data.stats['items']} items, {data.stats['events']} events",
        stage="dataset",
        progress=0.1,
    )

    # The buy-again ranker does not depend on the discover winner: fit it before the candidates, so
    # its time is spent before the sequential candidate's share of the run budget is worked out.
    _log(run, "fitting the buy-again ranker", stage="buy again", progress=0.12)
    clock = time.perf_counter()
    buy_again, buy_again_metrics = fit_buy_again(data.dataset, data.split)
    timings["buy_again_seconds"] = round(time.perf_counter() - clock, 2)
    if buy_again_metrics.get("n_targets"):
        _log(run, f"buy again ({buy_again_metrics['algorithm']}): test ndcg@10={buy_again_metrics['ndcg@10']:.4f}"
                  f" ± {buy_again_metrics['ndcg@10_se']:.4f}; "
                  + ", ".join(f"{k} {v.get('ndcg@10', 0):.4f}" for k, v in buy_again_metrics["baselines"].items()))

    conf = recommendations_settings()
    candidates = conf.AUTO_CANDIDATES if run.algorithm == "auto" else [run.algorithm]
    deadline = None if conf.TRAINING_TIME_BUDGET_SECONDS is None else started + conf.TRAINING_TIME_BUDGET_SECONDS
    clock = time.perf_counter()
    name, model, selection = _select(run, data, list(candidates), deadline=deadline)
    timings["train_seconds"] = round(time.perf_counter() - clock, 2)
    params = {k: v for k, v in asdict(model.config).items() if isinstance(v, (int, float, str, bool, type(None), list))}

    calibration = calibrate(model, data.split.valid, now=data.split.valid_now)  # histories: split.train here
    _log(run, f"calibrated probabilities on validation: a={calibration[0]:.3f} b={calibration[1]:.3f}")
    clock = time.perf_counter()
    cold_slots = cold_stage_attach(model, data.split, _embeddings(data))
    timings["cold_slots_seconds"] = round(time.perf_counter() - clock, 2)
    if cold_slots is not None:
        _log(run, f"cold slots chosen on validation: {cold_slots['chosen']['slots']} "
                  f"(min cosine {cold_slots['chosen']['min_cosine']}, {cold_slots['chosen']['match']} match) "
                  f"in {timings['cold_slots_seconds']}s")
    if model.cold_stage is not None:  # the served list has cold slots: the expected number is of that list
        selection["expected"] = served_list_expected(model, data.split)
    test = _test_metrics(model, data)
    active = _active_test_metrics(run, data, name, params)
    run.promoted = active is None or test[PRIMARY_METRIC] >= active[PRIMARY_METRIC]
    run.save(update_fields=["promoted"])
    verdict = "promote" if run.promoted else "keep the active version"
    _log(
        run,
        f"winner {name}: test ndcg@10={test[PRIMARY_METRIC]:.4f}"
        + (f" vs active {active[PRIMARY_METRIC]:.4f}" if active else " (no active version)")
        + f": {verdict}",
        stage="evaluated",
        progress=0.85,
    )

    discover = discover_task_metrics({**{f"test_{k}": v for k, v in test.items()},
                                      **{f"valid_{k}": v for k, v in selection["valid"].items()}},
                                     selection.get("results", []), data.split)
    discover["algorithm"] = name
    discover.update(selection.get("expected") or {})
    if selection.get("expected"):
        _log(run, f"expected ndcg@10 of the served list: {discover['expected_ndcg@10']:.4f} "
                  f"± {discover['expected_ndcg@10_se']:.4f} (validation weighted to the dates of the customers' "
                  f"latest orders; {discover['expected_customers']} effective customers)")

    if name in REFIT_ON_ALL:
        # Closed-form models are refit on every event (as engine.fit_recommender does): the served
        # weights then know the last orders too. Measured on Ta Feng (673k lines, last orders held
        # out): EASE's exported list 0.0186 NDCG@10 from split.train weights vs 0.0194 refit on all.
        clock = time.perf_counter()
        calibration, stage = model.calibration, model.cold_stage
        for candidate in selection.get("results", []):
            candidate.model = None
        model = None  # the split.train weights (EASE: an n x n matrix) go before the refit's arrive
        refit = make_recommender(name, dict(params))
        embeddings = _embeddings(data)
        refit.fit(data.dataset, item_embeddings=embeddings)
        refit.calibration = calibration
        cold_stage_carry(stage, refit, data.dataset, embeddings)
        model = refit
        timings["refit_seconds"] = round(time.perf_counter() - clock, 2)
        _log(run, f"refit {name} on every event ({timings['refit_seconds']}s)")
    model.set_histories(data.dataset)  # serve from every customer's full history
    artifact_forget_erased(model)  # customers erased while this run trained
    version = ModelVersion.objects.create(
        algorithm=name,
        params=params,
        data_stats=data.stats,
        metrics={
            "test": test,
            "validation": selection["valid"],
            "candidates": selection["candidates"],
            "active_test": active,
            "protocol": "leave-last-basket-out, full ranking",
            "tasks": {LIST_DISCOVER: discover, LIST_BUY_AGAIN: buy_again_metrics},
            "cold_slots": cold_slots,
        },
        device=str(resolve_device(recommendations_settings().DEVICE)),
        timings=timings,
        status=ModelVersion.Status.TRAINING,
    )
    path = _artifact_dir(version)
    model.save(path)
    buy_again.save(path / BUY_AGAIN_DIR)
    version.artifact_path = str(path)
    version.status = ModelVersion.Status.TRAINED
    version.save(update_fields=["artifact_path", "status"])
    run.model_version = version
    run.save(update_fields=["model_version"])
    return version


__all__ += ["algorithm_choices", "CrmDataset", "PRIMARY_METRIC"]
