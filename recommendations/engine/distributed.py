"""Data-parallel training of the sequential model with ``torch.distributed`` (DDP), under ``torchrun``.

Why: one GPU trains the sequential model on a few million customers in hours; N GPUs (one process
each, on one or several machines) divide the time per epoch by about N. The fit is the model's own
loop (``Sequential._fit_loop``); :class:`DDPHooks` changes only what data parallelism changes:

- the loss module runs inside ``DistributedDataParallel``, so every backward all-reduces (averages)
  the gradients and every process takes the same optimiser step;
- each epoch's shuffled order (the fit's own seeded generator, identical on every process) is cut
  into one shard per process by a ``DistributedSampler``: a process sees ``1/N`` of the examples,
  with its own batch of ``batch_size`` (the global batch is ``N x batch_size``);
- validation, progress and early stopping run on rank 0 only; its stop decision is broadcast, and at
  the end rank 0's kept (best-epoch) state is broadcast, so every process ends with the same
  parameters; only rank 0 writes the artefact.

With one process the hooks change nothing (no shard, the same order, an all-reduce over one rank):
``torchrun --nproc-per-node 1`` gives exactly the single-process fit.

Run::

    torchrun --standalone --nproc-per-node 4 -m recommendations.engine.distributed \\
        --data <job dir written by job_write> --out <artefact dir>

The backend is NCCL when the model's device resolves to CUDA (process ``LOCAL_RANK`` uses GPU
``LOCAL_RANK``), gloo on CPU. :func:`launch` is how a host (the training service) runs it as a
subprocess and reads the artefact back. See docs/scaling.md for several machines.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from .data import Dataset
from .device import resolve_device
from .models import Sequential, load_recommender, make_recommender
from .models.sequential import FitHooks

Progress = Callable[[dict], None]

PROGRESS_MARK = "@@tailored-progress "  # rank 0's stdout lines carrying an epoch's progress dict
JOB_FORMAT = 1
ALGORITHMS = ("sequential",)  # the torch models; the closed-form ones have nothing to parallelise
PROJECT_ROOT = Path(__file__).resolve().parents[2]
BAD_PROCESSES = "TRAIN_PROCESSES must be a positive integer or 'auto', not {value!r}."
TOO_FEW_GPUS = "{processes} processes need {processes} GPUs on this machine; CUDA sees {gpus}."
# Buffers (the availability mask, the frozen text table) never change: no broadcast every forward.
# (torch >= 2.13 spells it forward_sync_buffers; broadcast_buffers is deprecated there.)
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False}
                   if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})


class DistributedTrainingError(RuntimeError):
    """The torchrun subprocess failed; the message is its root cause."""


# ------------------------------------------------------------------------------------ the hooks
class DDPHooks(FitHooks):
    """The data-parallel side of ``Sequential._fit_loop`` (see the module docstring)."""

    def __init__(self, *, device: torch.device, find_unused_parameters: bool = False) -> None:
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.device = device  # where collectives' tensors live: the rank's GPU for NCCL, else CPU
        self.find_unused_parameters = find_unused_parameters

    def wrap(self, loss: nn.Module) -> nn.Module:
        # Same initial weights everywhere (DDP broadcasts rank 0's), but each rank draws its own
        # dropout masks and sampled negatives. Rank 0 keeps the single-process random stream.
        if self.rank:
            torch.manual_seed(torch.initial_seed() + self.rank)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(loss, device_ids=device_ids, find_unused_parameters=self.find_unused_parameters,
                                       **_NO_BUFFER_SYNC)

    def local_count(self, n: int) -> int:
        return math.ceil(n / self.world_size)

    def epoch_order(self, order: np.ndarray, epoch: int) -> np.ndarray:
        # The shuffle is the fit's own (seeded, the same on every rank); the sampler shards it:
        # rank r gets positions r, r + N, ..., padded by wrapping so every rank runs as many steps.
        # (shuffle=False: DistributedSampler's own torch shuffle would make one process differ from
        # the single-process fit, and its set_epoch reseeding is what the fit's generator already does.)
        sampler = DistributedSampler(order, num_replicas=self.world_size, rank=self.rank, shuffle=False)
        return order[np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))]

    def mean(self, value: float) -> float:
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def should_stop(self, stop: bool) -> bool:
        t = torch.tensor([int(stop)], dtype=torch.int32, device=self.device)
        dist.broadcast(t, src=0)
        return bool(t.item())

    @torch.no_grad()
    def finish(self, net: nn.Module) -> None:
        for tensor in net.state_dict().values():
            dist.broadcast(tensor, src=0)


def fit_distributed(
    dataset: Dataset,
    *,
    params: dict[str, Any],
    valid: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    progress: Progress | None = None,
    algorithm: str = "sequential",
) -> Sequential:
    """Fit in the current process group (every rank calls this with the same arguments).

    Only rank 0 reports ``progress`` (with ``processes`` added); every rank returns the same fitted
    model. ``fit_info`` gains ``world_size`` and ``backend``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Distributed training supports {', '.join(ALGORITHMS)}, not {algorithm!r}.")
    params = dict(params)
    if str(params.get("device", "auto")).startswith("cuda:"):
        params["device"] = "cuda"  # under torchrun each rank uses the GPU of its LOCAL_RANK
    model = make_recommender(algorithm, params)
    assert isinstance(model, Sequential)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    world = dist.get_world_size()
    model.fit_hooks = DDPHooks(device=device, find_unused_parameters=model.config.bce_weight <= 0)
    report = None
    if progress is not None and dist.get_rank() == 0:
        def report(info: dict) -> None:
            progress({**info, "processes": world})
    try:
        model.fit(dataset, item_embeddings=item_embeddings, valid=valid, progress=report)
    finally:
        del model.fit_hooks  # back to the class's single-process hooks
    model.fit_info.update({"world_size": world, "backend": dist.get_backend()})
    return model


def process_group_init(device: str = "auto") -> str:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...).

    NCCL with this process on GPU ``LOCAL_RANK`` when ``device`` resolves to CUDA, else gloo.
    Returns the backend."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if resolve_device(device).type == "cuda":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if local_world > torch.cuda.device_count():
            raise ValueError(TOO_FEW_GPUS.format(processes=local_world, gpus=torch.cuda.device_count()))
        torch.cuda.set_device(local_rank)
        bind = {"device_id": torch.device("cuda", local_rank)}  # eager NCCL init (torch >= 2.3)
        if "device_id" not in inspect.signature(dist.init_process_group).parameters:
            bind = {}
        dist.init_process_group("nccl", **bind)
        return "nccl"
    dist.init_process_group("gloo")
    return "gloo"


# ------------------------------------------------------------------------- the job on disk
@dataclass
class Job:
    algorithm: str
    params: dict[str, Any]
    dataset: Dataset
    valid: np.ndarray | None
    item_embeddings: np.ndarray | None


def job_write(
    directory: str | Path,
    dataset: Dataset,
    *,
    params: dict[str, Any],
    valid: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    algorithm: str = "sequential",
) -> Path:
    """Write what the training processes read: ``arrays.npz`` (the events, the validation targets,
    the text embeddings; no pickles) and ``job.json`` (algorithm, params)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "user_idx": dataset.user_idx, "item_idx": dataset.item_idx, "ts": dataset.ts,
        "weight": dataset.weight, "basket": dataset.basket,
        "user_keys": np.array(dataset.user_keys, dtype=str), "item_keys": np.array(dataset.item_keys, dtype=str),
    }
    if valid is not None:
        arrays["valid"] = np.asarray(valid, dtype=np.int64).reshape(-1, 2)
    if item_embeddings is not None:
        arrays["item_embeddings"] = np.asarray(item_embeddings, dtype=np.float32)
    np.savez(directory / "arrays.npz", **arrays)
    meta = {"format": JOB_FORMAT, "algorithm": algorithm, "params": params}
    (directory / "job.json").write_text(json.dumps(meta, indent=1))
    return directory


def job_read(directory: str | Path) -> Job:
    directory = Path(directory)
    meta = json.loads((directory / "job.json").read_text())
    if meta.get("format") != JOB_FORMAT:
        raise ValueError(f"{directory} holds job format {meta.get('format')!r}, expected {JOB_FORMAT}.")
    with np.load(directory / "arrays.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    dataset = Dataset(a["user_idx"], a["item_idx"], a["ts"], a["weight"], [str(k) for k in a["user_keys"]],
                      [str(k) for k in a["item_keys"]], basket=a["basket"])
    return Job(meta["algorithm"], meta["params"], dataset, a.get("valid"), a.get("item_embeddings"))


# ------------------------------------------------------------------------------ entry point
def _print_progress(info: dict) -> None:
    print(PROGRESS_MARK + json.dumps(info, default=float), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """One torchrun worker: join the group, fit, rank 0 saves. A failing rank writes
    ``<out>/error-rank<r>.txt`` (the exception in one line) before exiting non-zero."""
    parser = argparse.ArgumentParser(prog="python -m recommendations.engine.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="job directory written by job_write()")
    parser.add_argument("--out", required=True, type=Path, help="artefact directory (rank 0 writes it)")
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        job = job_read(args.data)
        process_group_init(str(job.params.get("device", "auto")))
        try:
            model = fit_distributed(job.dataset, params=job.params, valid=job.valid,
                                    item_embeddings=job.item_embeddings, progress=_print_progress,
                                    algorithm=job.algorithm)
            if rank == 0:
                model.save(args.out)
            dist.barrier()  # every rank (every machine's torchrun) ends once the artefact is written
        finally:
            gc.collect()  # a DDP wrapper left in a reference cycle must not outlive the group
            dist.destroy_process_group()
    except BaseException as exc:
        (args.out / f"error-rank{rank}.txt").write_text(f"{type(exc).__name__}: {exc}".strip())
        raise
    return 0


# ------------------------------------------------------------------------------ the launcher
def processes_resolve(value: int | str | None) -> int:
    """The ``TRAIN_PROCESSES`` setting as a process count: a positive int, or "auto" = every visible
    GPU when there are several, else 1."""
    if value is None:
        return 1
    if isinstance(value, str) and value.strip().lower() == "auto":
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return gpus if gpus > 1 else 1
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(BAD_PROCESSES.format(value=value)) from None
    if n < 1 or isinstance(value, float) and n != value:
        raise ValueError(BAD_PROCESSES.format(value=value))
    return n


def torchrun_command(job_dir: Path, out_dir: Path, processes: int,
                     torchrun_args: Sequence[str] = ("--standalone",)) -> list[str]:
    """``torchrun <torchrun_args> --nproc-per-node N -m recommendations.engine.distributed ...``,
    through this interpreter (``python -m torch.distributed.run`` is torchrun)."""
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args, f"--nproc-per-node={processes}",
            "-m", "recommendations.engine.distributed", "--data", str(job_dir), "--out", str(out_dir)]


def torchrun_env() -> dict[str, str]:
    """This process's environment with the project importable (``-m recommendations...``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def _failure(out_dir: Path, code: int, tail: deque[str]) -> DistributedTrainingError:
    """The first rank's exception (the root cause; the others fail because it left), else the tail
    of the output."""
    errors = sorted(out_dir.glob("error-rank*.txt"), key=lambda p: p.stat().st_mtime)
    cause = errors[0].read_text() if errors else "\n".join(list(tail)[-10:])
    return DistributedTrainingError(f"Distributed training failed (torchrun exit code {code}): {cause}")


def launch(
    job_dir: str | Path,
    out_dir: str | Path,
    *,
    processes: int,
    progress: Progress | None = None,
    torchrun_args: Sequence[str] = ("--standalone",),
    log: Callable[[str], None] | None = None,
) -> Sequential:
    """Run the job under torchrun with ``processes`` workers on this machine, pass rank 0's progress
    dicts to ``progress`` as they come, and load the artefact. A failure raises
    :class:`DistributedTrainingError` with the failing rank's exception; if this process is
    interrupted (a task's time limit), torchrun and its workers are terminated."""
    job_dir, out_dir = Path(job_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = torchrun_command(job_dir, out_dir, processes, torchrun_args)
    tail: deque[str] = deque(maxlen=50)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=torchrun_env(),
                            cwd=PROJECT_ROOT, bufsize=1)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PROGRESS_MARK):
                if progress is not None:
                    progress(json.loads(line[len(PROGRESS_MARK):]))
                continue
            tail.append(line.rstrip("\n"))
            if log is not None:
                log(line.rstrip("\n"))
        code = proc.wait()
    except BaseException:
        proc.terminate()  # torchrun forwards SIGTERM to its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if code != 0:
        raise _failure(out_dir, code, tail)
    model = load_recommender(out_dir)
    assert isinstance(model, Sequential)
    model.fit_info["launch_seconds"] = round(time.perf_counter() - started, 2)
    return model


if __name__ == "__main__":
    sys.exit(main())
