"""Data-parallel training (DDP): two CPU processes with gloo average their gradients, end with the same
parameters, and rank 0's artefact loads and scores; one process is exactly the single-process fit."""

from __future__ import annotations

import gc
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recommendations.engine.data import build_dataset, leave_last_out_split
from recommendations.engine.distributed import (
    BAD_PROCESSES,
    PROJECT_ROOT,
    DDPHooks,
    fit_distributed,
    job_read,
    job_write,
    launch,
    processes_resolve,
    torchrun_command,
    torchrun_env,
)
from recommendations.engine.models import Sequential, load_recommender, make_recommender
from recommendations.engine.models.sequential import SequentialLoss, SequentialNet
from recommendations.engine.synthetic import planted_clusters

# Tiny on purpose: two processes on a shared 2-core box. Validation on rank 0 and 3 epochs, so the
# broadcast stop decision and best-state broadcast both run.
PARAMS = {"max_len": 8, "dim": 16, "max_epochs": 3, "min_epochs": 1, "patience": 1, "seed": 0,
          "min_steps_per_epoch": 4, "torch_threads": 1}
GRAD_CONFIG = {"dim": 16, "dropout": 0.0, "id_dropout": 0.0, "bce_weight": 0.0, "use_text": False}
N_ITEMS, LENGTH, WIDTH = 12, 5, 2


def _tiny_job(directory: Path) -> Path:
    syn = planted_clusters(n_users=80, n_clusters=4, items_per_cluster=6, min_len=4, max_len=8, seed=3)
    ds, _ = build_dataset(syn.events, item_keys=syn.item_keys)
    split = leave_last_out_split(ds)
    text = np.eye(4, dtype=np.float32)[syn.item_cluster]
    return job_write(directory, split.train, params=PARAMS, valid=split.valid, item_embeddings=text)


def _grad_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """4 sequences, every position with one target: each half holds the same number of targets, so
    the full batch's mean loss is the mean of the two halves' mean losses."""
    rng = np.random.default_rng(7)
    seq = rng.integers(1, N_ITEMS + 1, size=(4, LENGTH, WIDTH))
    tgt = rng.integers(1, N_ITEMS + 1, size=(4, LENGTH, 1))
    return torch.from_numpy(seq), torch.from_numpy(tgt)


def _grad_loss_module() -> SequentialLoss:
    model = Sequential(**GRAD_CONFIG)
    torch.manual_seed(11)
    net = SequentialNet(N_ITEMS, 0, model.config, GRAD_CONFIG["dim"], LENGTH)
    return SequentialLoss(model, net, torch.zeros(N_ITEMS), False, torch.arange(N_ITEMS))


def _worker(rank: int, world: int, init_file: str, job_dir: str, out_dir: str) -> None:
    """One rank: one DDP backward on its half of a batch (gradients saved), then a full fit."""
    torch.set_num_threads(1)
    os.environ["RANK"] = str(rank)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    out = Path(out_dir)
    try:
        seq, tgt = _grad_batch()
        half = slice(2 * rank, 2 * rank + 2)
        loss_module = _grad_loss_module()
        step = DDPHooks(device=torch.device("cpu"), find_unused_parameters=True).wrap(loss_module)
        step(seq[half], tgt[half]).backward()
        torch.save({n: p.grad.clone() for n, p in loss_module.net.named_parameters() if p.grad is not None},
                   out / f"grads-rank{rank}.pt")
        del step, loss_module  # no DDP wrapper (and its reducer) outlives the process group

        job = job_read(job_dir)
        model = fit_distributed(job.dataset, params=job.params, valid=job.valid,
                                item_embeddings=job.item_embeddings)
        torch.save(model._net.state_dict(), out / f"state-rank{rank}.pt")
        if rank == 0:
            model.save(out / "model")
        # as the product's worker (distributed.main) does: no rank tears the group down while the other
        # still uses it, and no DDP object is left for the interpreter's exit. Without both, CI once saw
        # rank 1 abort here (SIGABRT, "terminate called without an active exception")
        dist.barrier()
    finally:
        gc.collect()
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """Run the two ranks once (spawned processes, gloo); their outputs are in the returned folder."""
    root = tmp_path_factory.mktemp("ddp")
    job = _tiny_job(root / "job")
    mp.spawn(_worker, args=(2, str(root / "init"), str(job), str(root)), nprocs=2, join=True)
    return root


def test_gradients_are_averaged_over_ranks(two_ranks):
    """Each rank backpropagates its half of a batch; after DDP's all-reduce both hold the gradient
    one process computes on the whole batch."""
    # given
    seq, tgt = _grad_batch()
    loss_module = _grad_loss_module()
    # when
    loss_module(seq, tgt).backward()
    # then
    full = {n: p.grad for n, p in loss_module.net.named_parameters() if p.grad is not None}
    for rank in (0, 1):
        grads = torch.load(two_ranks / f"grads-rank{rank}.pt", weights_only=True)
        assert set(grads) == set(full)
        for name, g in full.items():
            assert torch.allclose(grads[name], g, atol=1e-6, rtol=1e-4), name
    # ...and that is not what either half alone gives (the test can fail)
    lone = _grad_loss_module()
    lone(seq[:2], tgt[:2]).backward()
    assert not torch.allclose(lone.net.id_emb.grad, full["id_emb"], atol=1e-6)


def test_both_ranks_end_with_identical_parameters(two_ranks):
    """Rank 0 alone validates; here it stops at epoch 2 and keeps epoch 1's state (seen when this
    was written), so rank 1 holds the same parameters only through the broadcast stop decision
    and the broadcast of the kept state."""
    state0 = torch.load(two_ranks / "state-rank0.pt", weights_only=True)
    state1 = torch.load(two_ranks / "state-rank1.pt", weights_only=True)
    assert set(state0) == set(state1)
    assert all(torch.equal(state0[k], state1[k]) for k in state0)


def test_rank0_artefact_loads_and_scores(two_ranks):
    """The artefact says how it was trained, loads like any model, and ranks the training customers."""
    # when
    model = load_recommender(two_ranks / "model")
    # then
    assert isinstance(model, Sequential)
    assert model.fit_info["world_size"] == 2 and model.fit_info["backend"] == "gloo"
    assert 1 <= model.fit_info["epochs_run"] <= PARAMS["max_epochs"]
    assert model.fit_info["best_valid_ndcg"] is not None  # rank 0 validated
    state0 = torch.load(two_ranks / "state-rank0.pt", weights_only=True)
    assert all(torch.equal(model._net.state_dict()[k], state0[k]) for k in state0)
    items, scores = model.recommend(np.arange(model.n_users), k=3)
    assert items.shape == (model.n_users, 3) and np.isfinite(scores).all()


def test_one_process_is_the_single_process_fit(tmp_path):
    """World size 1 goes through the same hooks (DDP wrapper, sampler, broadcasts) and gives
    bit-for-bit the parameters of a plain ``fit``."""
    # given
    job = job_read(_tiny_job(tmp_path / "job"))
    plain = make_recommender("sequential", job.params).fit(
        job.dataset, item_embeddings=job.item_embeddings, valid=job.valid)
    # when
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        ddp = fit_distributed(job.dataset, params=job.params, valid=job.valid, item_embeddings=job.item_embeddings)
    finally:
        dist.destroy_process_group()
    # then
    assert ddp.fit_info["best_epoch"] == plain.fit_info["best_epoch"]
    assert ddp.fit_info["world_size"] == 1
    a, b = plain._net.state_dict(), ddp._net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "fit_hooks" not in vars(ddp)  # the instance is back on the single-process hooks


def test_job_round_trips(tmp_path):
    # given
    syn = planted_clusters(n_users=20, n_clusters=2, items_per_cluster=5, seed=1)
    ds, _ = build_dataset(syn.events, item_keys=syn.item_keys)
    # when
    job = job_read(job_write(tmp_path, ds, params={"dim": 8}, valid=np.array([[0, 1]])))
    # then
    assert job.algorithm == "sequential" and job.params == {"dim": 8}
    assert job.dataset.user_keys == ds.user_keys and job.dataset.item_keys == ds.item_keys
    for name in ("user_idx", "item_idx", "ts", "weight", "basket"):
        assert np.array_equal(getattr(job.dataset, name), getattr(ds, name))
    assert job.valid.tolist() == [[0, 1]] and job.item_embeddings is None


@pytest.mark.parametrize(("value", "expected"), [(None, 1), (1, 1), (3, 3), ("2", 2), ("auto", 1)])
def test_processes_resolve(value, expected, monkeypatch):
    """"auto" is every visible GPU when there are several, else one process (no GPU here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert processes_resolve(value) == expected


def test_processes_auto_takes_every_visible_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert processes_resolve("auto") == 4


@pytest.mark.parametrize("value", [0, -2, "two", 1.5])
def test_processes_resolve_rejects_nonsense(value):
    with pytest.raises(ValueError, match="TRAIN_PROCESSES must be a positive integer"):
        processes_resolve(value)
    assert BAD_PROCESSES.format(value=value) in str(pytest.raises(ValueError, processes_resolve, value).value)


def test_two_machines_meet_at_the_rendezvous(tmp_path):
    """Two torchrun agents, as on two machines (both on localhost here), one process each, join one
    c10d rendezvous with the same job and output folders: the launching side reads back the
    artefact of a world of two, whichever machine rank 0 landed on.

    The rendezvous store is hosted here, on a port this process binds and holds for the whole test,
    and both agents join it as clients (``is_host=0``): no port freed then re-bound (another process
    could take it in between), no two agents racing to host the store, and a store that outlives
    both agents (an agent hosting it could exit while the other one still uses it)."""
    # given
    job = _tiny_job(tmp_path / "job")
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, multi_tenant=True, wait_for_workers=False)
    rendezvous = ["--nnodes=2", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{store.port}",
                  "--rdzv-id=test", "--rdzv-conf=is_host=0"]
    other_log = (tmp_path / "other-machine.log").open("w")
    other_machine = subprocess.Popen(torchrun_command(job, tmp_path / "out", 1, rendezvous), env=torchrun_env(),
                                     cwd=PROJECT_ROOT, stdout=other_log, stderr=subprocess.STDOUT)
    try:
        # when
        model = launch(job, tmp_path / "out", processes=1, torchrun_args=rendezvous)
        # then
        code = other_machine.wait(timeout=120)
        assert code == 0, (tmp_path / "other-machine.log").read_text()[-3000:]
    finally:
        other_machine.kill()
        other_machine.wait()
        other_log.close()
        del store
    assert model.fit_info["world_size"] == 2
    assert model.recommend(np.arange(3), k=2)[0].shape == (3, 2)
