"""The flagship: a SASRec-style causal transformer over each customer's recent BASKETS.

Positions are baskets (orders), not lines: a basket's vector is the mean of its items'
representations, so the lines of one order never predict each other, all of them are used, and
an epoch costs a fraction of a line-level model (a customer with 30 orders of 15 lines is 30
positions, not 450). The target at each position is the NEXT basket's items that are new to the
customer (multi-label softmax: each target item against the catalogue, full softmax on small
catalogues, shared sampled negatives on large ones), which is exactly the ``discover`` task:
the loss never rewards predicting what the customer already bought. ``baskets=False`` makes
every line its own basket (a plain SASRec: the benchmarks' reference).

Why this model: what a customer does next depends on what they did last, which
co-occurrence models ignore. Items are represented as

    p_i = mask_i * E_id[i] + W t_i          (t_i = frozen LLM text embedding)
    b_i = mask_i * beta_i + w . t_i

where ``mask_i`` is 1 for items with training events and 0 otherwise. A customer
is ``q_u`` = the transformer output at the last position of their (left-padded)
last ``max_len`` items, with ``b_u`` = a linear head on ``q_u``, and

    score(u, i) = b_u + b_i + <q_u, p_i>,      P(u, i) = sigmoid(score)

(the logistic form; probabilities are then Platt-calibrated on validation data).

Cold start: an item nobody has touched has no id embedding (mask_i = 0), so it is
scored purely through its text projection, which the model is forced to make useful
by *id dropout* (each training step zeroes the id part of a random ``id_dropout``
fraction of items). Items without training events are also left out of the softmax
denominator, so training never pushes unseen items down just for being unseen.

Training: next-basket prediction at every position of every chunk of ``max_len`` baskets
of each customer's history, softmax cross-entropy over the catalogue (sampled
softmax with shared uniform negatives above ``full_softmax_max_items``), plus a small
binary logistic term on (positive, random negative) pairs that gives ``b_u`` and the
raw logistic scores their meaning. AdamW, dropout, seeded, early stopping on
validation NDCG@10 (full ranking) keeping the best state, mixed precision on CUDA
via ``device.autocast_context`` (a no-op on CPU: one code path).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data import Dataset, group_orders, last_basket_holdout
from ..device import autocast_context, needs_grad_scaler, resolve_device
from .base import FitInputs, Progress, Recommender


@dataclass
class SequentialConfig:
    max_len: int = 50  # baskets (or lines with baskets=False); capped by the data's own lengths
    dim: int | None = None  # None: 64 on CPU, 128 on CUDA
    baskets: bool = True  # False: each line is a position (plain SASRec)
    max_basket_items: int = 16  # items pooled per basket position (a random subset of larger ones)
    max_targets: int = 8  # target items per position (a random subset of larger next baskets)
    new_items_only: bool = True  # targets = next basket's items new to the customer (discover)
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.2
    id_dropout: float = 0.25
    use_text: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 128
    min_steps_per_epoch: int = 80  # small data: smaller batches, enough updates per epoch
    max_epochs: int = 40
    patience: int = 5
    min_epochs: int = 2
    bce_weight: float = 0.1
    full_softmax_max_items: int = 4096  # above: sampled softmax (full is O(n_items) per position)
    n_negatives: int = 1024  # shared uniform negatives when the softmax is sampled
    max_eval_users: int = 5000  # customers scored per epoch for early stopping (a fixed random subset)
    # what the epoch is chosen on: "own" = the last training order of a random sample of customers,
    # held out from the fit (the caller's validation targets then measure the model without having
    # chosen anything: selection and the expected quality stay honest); "valid" = the caller's
    # validation targets (the best of many epochs on them reads high, by about one SE on MovieLens)
    stop_on: str = "own"
    # wall-clock cap of the whole fit (preparation, epochs, validation, cold-strength check) and the
    # caller's validation pass over ``valid`` after it; the best epoch seen so far is kept
    max_train_seconds: float | None = None
    fixed_epochs: int | None = None  # train exactly this many epochs (refits without valid)
    device: str = "auto"
    torch_threads: int | None = None  # CPU threads while fitting; 1 avoids oversubscription
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stop_on not in ("own", "valid"):
            raise ValueError(f"stop_on must be 'own' or 'valid', not {self.stop_on!r}.")


class SequentialNet(nn.Module):
    """Item table + causal transformer. Item index i is token i + 1; token 0 is padding."""

    def __init__(self, n_items: int, text_dim: int, cfg: SequentialConfig, dim: int, max_len: int) -> None:
        super().__init__()
        d = dim
        self.cfg = cfg
        self.n_items = n_items
        self.id_emb = nn.Parameter(torch.randn(n_items, d) * 0.01)
        self.id_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("id_mask", torch.ones(n_items))
        self.use_text = text_dim > 0
        if self.use_text:
            self.register_buffer("text", torch.zeros(n_items, text_dim))
            self.text_proj = nn.Linear(text_dim, d)
            self.text_bias = nn.Linear(text_dim, 1)
        self.pos_emb = nn.Embedding(max_len, d)
        nn.init.normal_(self.pos_emb.weight, std=0.01)
        layer = nn.TransformerEncoderLayer(
            d, cfg.n_heads, dim_feedforward=4 * d, dropout=cfg.dropout,
            batch_first=True, norm_first=True, activation="gelu",
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.in_drop = nn.Dropout(cfg.dropout)
        self.user_bias = nn.Linear(d, 1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.user_bias.bias)

    def item_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(p [n_items, d], b [n_items]); id dropout applies in training mode."""
        mask = self.id_mask
        if self.training and self.cfg.id_dropout > 0:
            keep = torch.rand_like(mask) >= self.cfg.id_dropout
            mask = mask * keep
        p = self.id_emb * mask[:, None]
        b = self.id_bias * mask
        if self.use_text:
            p = p + self.text_proj(self.text)
            b = b + self.text_bias(self.text).squeeze(-1)
        return p, b

    def encode(self, seq: torch.Tensor, p: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states [B, L, d] for left-padded basket token tensors [B, L, M]
        (token 0 = padding; a position whose tokens are all 0 is a padded position).
        ``table``: ``p`` with a zero row 0 prepended (``padded_table``), when the caller keeps one;
        building it copies the whole item table, the main cost of scoring one short history."""
        bsz, length, _ = seq.shape
        if table is None:
            table = padded_table(p)
        present = (seq > 0).to(p.dtype)
        n_in = present.sum(-1, keepdim=True).clamp(min=1.0)
        pooled = table[seq].sum(2) / n_in  # mean of the basket's item vectors
        x = pooled * math.sqrt(p.shape[1]) + self.pos_emb.weight[-length:][None]
        x = self.in_drop(x)
        pad = seq[:, :, 0] == 0
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), 1)
        blocked = causal[None] | pad[:, None, :]
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=seq.device)[None]
        mask = blocked.repeat_interleave(self.cfg.n_heads, dim=0)
        h = self.encoder(x, mask=mask)
        return self.norm(h)

    def user_vectors(
        self, seq: torch.Tensor, p: torch.Tensor, table: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_u [B, d], b_u [B]) from the last position."""
        q = self.encode(seq, p, table)[:, -1]
        return q, self.user_bias(q).squeeze(-1)


def padded_table(p: torch.Tensor) -> torch.Tensor:
    """The item table with a zero row for the padding token 0: [n_items + 1, d]."""
    return torch.cat([p.new_zeros(1, p.shape[1]), p], dim=0)


def _units(baskets: list[np.ndarray], as_lines: bool) -> list[np.ndarray]:
    """A customer's positions: their baskets, or (as_lines) every line on its own."""
    if not as_lines:
        return baskets
    return [np.array([i]) for b in baskets for i in b]


def _fill(row: np.ndarray, items: np.ndarray, rng: np.random.Generator | None) -> None:
    """Write item tokens (index + 1) into a fixed-width row, a random subset if too many."""
    if len(items) > len(row):
        items = rng.choice(items, len(row), replace=False) if rng is not None else items[: len(row)]
    row[: len(items)] = items + 1


def _chunks(
    seqs: list[list[np.ndarray]], max_len: int, width: int, n_targets: int, new_only: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each customer's basket sequence into windows of ``max_len`` positions ->
    (inputs int32 [n_chunks, max_len, width], targets int32 [n_chunks, max_len, n_targets]);
    left-padded, windows tile the history from its end. The target of position t is the next
    basket's items (only those not in any earlier basket when ``new_only``)."""
    inputs, targets = [], []
    for baskets in seqs:
        n = len(baskets)
        if n < 2:
            continue
        tgt_sets = []
        seen: set[int] = set()
        for b in baskets:
            tgt_sets.append(np.array([i for i in b.tolist() if i not in seen], np.int64) if new_only else b)
            seen.update(b.tolist())
        end = n  # positions 0..n-2 predict baskets 1..n-1
        while end > 1:
            lo = max(0, end - 1 - max_len)
            positions = range(lo, end - 1)
            inp = np.zeros((max_len, width), np.int32)
            tgt = np.zeros((max_len, n_targets), np.int32)
            offset = max_len - len(positions)
            for r, pos in enumerate(positions):
                _fill(inp[offset + r], baskets[pos], rng)
                _fill(tgt[offset + r], tgt_sets[pos + 1], rng)
            if tgt.any():
                inputs.append(inp)
                targets.append(tgt)
            end -= max_len
    if not inputs:
        return np.zeros((0, max_len, width), np.int32), np.zeros((0, max_len, n_targets), np.int32)
    return np.stack(inputs), np.stack(targets)


def _pad_histories(histories: list[list[np.ndarray]], max_len: int, width: int) -> np.ndarray:
    """Latest ``max_len`` baskets of each customer -> int32 [n, max_len, width] tokens."""
    out = np.zeros((len(histories), max_len, width), np.int32)
    for r, h in enumerate(histories):
        h = h[-max_len:]
        offset = max_len - len(h)
        for j, b in enumerate(h):
            _fill(out[r, offset + j], np.asarray(b, np.int64)[-width:], None)
    return out


class FitHooks:
    """Where a data-parallel fit differs from the single-process one; these defaults ARE the
    single-process fit. ``engine.distributed.DDPHooks`` overrides them under ``torchrun``: it wraps
    the loss module in DistributedDataParallel, shards each epoch's order, averages the logged loss,
    makes rank 0's early-stopping decision everyone's and broadcasts the kept state."""

    is_main = True  # validation, progress and early stopping happen here

    def wrap(self, loss: nn.Module) -> nn.Module:
        """The module whose forward returns the training loss of a batch."""
        return loss

    def local_count(self, n: int) -> int:
        """Training examples this process sees per epoch (it sizes the batch)."""
        return n

    def epoch_order(self, order: np.ndarray, epoch: int) -> np.ndarray:
        """This process's share of the epoch's shuffled example order."""
        return order

    def mean(self, value: float) -> float:
        """A per-process number averaged over the processes (the logged loss)."""
        return value

    def should_stop(self, stop: bool) -> bool:
        """The main process's stop decision, the same on every process."""
        return stop

    def finish(self, net: nn.Module) -> None:
        """After the kept state is loaded: make every process hold the main one's parameters."""
        return None


class SequentialLoss(nn.Module):
    """``forward(seq, tgt)`` = the training loss of a batch, so DistributedDataParallel (which only
    synchronises gradients of what runs through a module's ``forward``) can wrap the fit's step."""

    def __init__(self, model: Sequential, net: SequentialNet, softmax_mask: torch.Tensor, sampled: bool,
                 warm_items: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self._model, self._softmax_mask, self._sampled, self._warm_items = model, softmax_mask, sampled, warm_items

    def forward(self, seq: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self._model._loss(self.net, seq, tgt, self._softmax_mask, self._sampled, self._warm_items)


class Sequential(Recommender):
    algorithm = "sequential"
    config_cls = SequentialConfig
    fit_hooks: FitHooks = FitHooks()  # engine.distributed sets a DDPHooks for a torchrun fit

    # ------------------------------------------------------------------ fit
    def _fit(self, train: Dataset, inputs: FitInputs) -> None:
        threads = torch.get_num_threads()
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        try:
            self._fit_loop(train, inputs.item_embeddings, inputs.valid, inputs.progress)
        finally:
            torch.set_num_threads(threads)

    def _sizes(self, train: Dataset, seqs: list[list[np.ndarray]]) -> tuple[int, int, int]:
        """(dim, max_len, basket width) sized by the device and the data: no longer windows
        or wider baskets than 95% of the customers / baskets need."""
        cfg = self.config
        dim = cfg.dim or (128 if self.device.type == "cuda" else 64)
        lens = np.array([len(x) for x in seqs if len(x)], np.int64)
        max_len = int(min(cfg.max_len, max(4, np.percentile(lens, 95) if len(lens) else 4)))
        sizes = np.array([len(b) for x in seqs for b in x], np.int64)
        width = int(min(cfg.max_basket_items, max(1, np.percentile(sizes, 95) if len(sizes) else 1)))
        return int(dim), max_len, width

    def _sequences(self, ds: Dataset) -> list[list[np.ndarray]]:
        return [_units(b, not self.config.baskets) for b in ds.basket_sequences()]

    def _fit_loop(
        self,
        train: Dataset,
        item_embeddings: np.ndarray | None,
        valid: np.ndarray | None,
        progress: Progress | None,
    ) -> None:
        from ..metrics import evaluate  # local import: metrics imports the model contract

        cfg = self.config
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.device = resolve_device(cfg.device)
        text = item_embeddings if (cfg.use_text and item_embeddings is not None) else None
        self._text_dim = 0 if text is None else int(text.shape[1])
        prep_started = time.perf_counter()
        full_seqs = self._sequences(train)
        self._dim, self._max_len, self._width = self._sizes(train, full_seqs)
        # early stopping: the caller's validation targets, or (stop_on="own") a set held out here
        eval_targets, fit_train = None, train
        if valid is not None and len(valid) and cfg.fixed_epochs is None:
            if cfg.stop_on == "own":
                fit_train, eval_targets = last_basket_holdout(train, cfg.max_eval_users, rng)
            else:
                eval_targets = np.asarray(valid, dtype=np.int64).reshape(-1, 2)
                users = np.unique(eval_targets[:, 0])
                if len(users) > cfg.max_eval_users:
                    keep = rng.choice(users, cfg.max_eval_users, replace=False)
                    eval_targets = eval_targets[np.isin(eval_targets[:, 0], keep)]
            if not len(eval_targets):
                eval_targets, fit_train = None, train
        seqs = full_seqs if fit_train is train else self._sequences(fit_train)
        net = SequentialNet(train.n_items, self._text_dim, cfg, self._dim, self._max_len)
        has_events = fit_train.item_counts() > 0
        net.id_mask.copy_(torch.from_numpy(has_events.astype(np.float32)))
        if text is not None:
            net.text.copy_(torch.from_numpy(np.asarray(text, dtype=np.float32)))
        self._net = net.to(self.device)
        self._table = None
        self._hist = _pad_histories(seqs, self._max_len, self._width)

        inputs, targets = _chunks(seqs, self._max_len, self._width, cfg.max_targets, cfg.new_items_only, rng)
        prep_seconds = time.perf_counter() - prep_started
        sampled = train.n_items > cfg.full_softmax_max_items
        softmax_mask = torch.zeros(train.n_items, device=self.device)
        softmax_mask[torch.from_numpy(~has_events)] = float("-inf")
        warm_items = torch.from_numpy(np.flatnonzero(has_events)).to(self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(self.device))
        hooks = self.fit_hooks
        step = hooks.wrap(SequentialLoss(self, net, softmax_mask, sampled, warm_items))

        # The time cap covers the whole fit (preparation, epochs, their validation, the cold-item check
        # after them) and the caller's validation pass over every ``valid`` customer that follows it
        # (engine.train.select_best); what follows the steps is reserved in measured validation passes.
        deadline = prep_started + cfg.max_train_seconds if cfg.max_train_seconds else None
        n_epochs = cfg.fixed_epochs or cfg.max_epochs
        # Small datasets: shrink the batch so an epoch is still >= ~min_steps_per_epoch steps.
        batch_size = int(min(cfg.batch_size, max(16, hooks.local_count(len(inputs)) // cfg.min_steps_per_epoch)))
        best = (-1.0, 0, None)  # (ndcg, epoch, state)
        started = time.perf_counter()
        history = []
        step_seconds = eval_seconds = last_eval = 0.0
        full_pass = 0.0  # the caller's pass over every validation customer
        if eval_targets is not None:
            n_valid_users = len(np.unique(np.asarray(valid, np.int64).reshape(-1, 2)[:, 0]))
            full_pass = n_valid_users / max(1, len(np.unique(eval_targets[:, 0])))
        tail = 1.0 + full_pass  # + this epoch's validation

        def late(passes: float) -> bool:
            """Past the deadline once ``passes`` validation passes more are counted."""
            return deadline is not None and time.perf_counter() + passes * last_eval > deadline
        for epoch in range(1, n_epochs + 1):
            net.train()
            order = hooks.epoch_order(rng.permutation(len(inputs)), epoch)
            total, n_batches = 0.0, 0
            t_epoch = time.perf_counter()
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                seq = torch.from_numpy(inputs[idx].astype(np.int64)).to(self.device)
                tgt = torch.from_numpy(targets[idx].astype(np.int64)).to(self.device)
                with autocast_context(self.device):
                    loss = step(seq, tgt)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
                total += float(loss.detach())
                n_batches += 1
                if late(tail):
                    break  # out of time inside an epoch (large data, slow device): validate what was learnt
            step_seconds += time.perf_counter() - t_epoch
            info = {"epoch": epoch, "loss": hooks.mean(total / max(n_batches, 1)),
                    "seconds": round(time.perf_counter() - started, 2)}
            self._table = None
            if eval_targets is not None and hooks.is_main:
                t_eval = time.perf_counter()
                metrics = evaluate(self, fit_train, eval_targets, k=10, with_coverage=False)
                last_eval = time.perf_counter() - t_eval
                eval_seconds += last_eval
                info["valid_ndcg"] = metrics["ndcg@10"]
                info["valid_hr"] = metrics["hr@10"]
                if metrics["ndcg@10"] > best[0]:
                    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    best = (metrics["ndcg@10"], epoch, state)
            else:
                info["valid_ndcg"] = None
                best = (-1.0, epoch, None)
            info["best_epoch"] = best[1]
            # the same on every process (DDP: averaged over them), so they all stop at the same step
            last_eval = hooks.mean(last_eval if hooks.is_main else 0.0)
            history.append(info)
            if progress:
                progress(dict(info))
            out_of_time = late(tail)
            stalled = eval_targets is not None and epoch - best[1] >= cfg.patience and epoch >= cfg.min_epochs
            if hooks.should_stop(bool(stalled or out_of_time)):
                break
        if best[2] is not None:
            net.load_state_dict(best[2])
        hooks.finish(net)
        net.eval()
        self._table = None
        if fit_train is not train:  # the held-out stopping orders are history again when scoring
            self._hist = _pad_histories(full_seqs, self._max_len, self._width)
        n_ep = max(len(history), 1)
        self.fit_info = {"best_epoch": best[1], "best_valid_ndcg": best[0] if best[0] >= 0 else None,
                         "epochs_run": len(history), "text_dim": self._text_dim,
                         "dim": self._dim, "max_len": self._max_len, "width": self._width,
                         "train_seconds": round(time.perf_counter() - started, 2),
                         "prep_seconds": round(prep_seconds, 2),
                         "seconds_per_epoch_steps": round(step_seconds / n_ep, 2),
                         "seconds_per_epoch_validation": round(eval_seconds / n_ep, 2),
                         "n_chunks": int(len(inputs)), "positions": int((inputs[:, :, 0] > 0).sum()),
                         "sampled_softmax": bool(sampled), "device": str(self.device)}

    def _loss(self, net: SequentialNet, seq: torch.Tensor, tgt: torch.Tensor,
              softmax_mask: torch.Tensor, sampled: bool, warm_items: torch.Tensor) -> torch.Tensor:
        """Multi-label softmax: every target item of a position against the catalogue (or shared
        sampled negatives), averaged over all (position, target) pairs."""
        cfg = self.config
        p, b = net.item_table()
        h = net.encode(seq, p)
        valid = tgt[:, :, 0] > 0
        h, t = h[valid], tgt[valid] - 1  # [N, d], [N, T] (-1 = no target)
        has = t >= 0
        t_safe = t.clamp(min=0)
        pos_logit = (h[:, None, :] * p[t_safe]).sum(-1) + b[t_safe]  # [N, T]
        if not sampled:
            # -inf bias for items without training events: out of the softmax, for free
            logits = (h @ p.T + (b + softmax_mask)).float()
            lse = torch.logsumexp(logits, dim=1, keepdim=True)
            nll = lse - logits.gather(1, t_safe)
        else:
            neg = warm_items[torch.randint(0, len(warm_items), (cfg.n_negatives,), device=h.device)]
            neg_lse = torch.logsumexp((h @ p[neg].T + b[neg]).float(), dim=1, keepdim=True)
            pos = pos_logit.float()
            nll = torch.logaddexp(pos, neg_lse) - pos
        ce = (nll * has).sum() / has.sum().clamp(min=1)
        if cfg.bce_weight <= 0:
            return ce
        b_u = net.user_bias(h).squeeze(-1)
        first = pos_logit[:, 0]
        neg1 = torch.randint(0, net.n_items, (len(h),), device=h.device)
        neg_logit = (h * p[neg1]).sum(-1) + b[neg1]
        bce = F.binary_cross_entropy_with_logits(
            torch.cat([first + b_u, neg_logit + b_u]).float(),
            torch.cat([torch.ones_like(first), torch.zeros_like(neg_logit)]).float(),
        )
        return ce + cfg.bce_weight * bce

    # -------------------------------------------------------------- scoring
    def _set_histories(self, ds: Dataset) -> None:
        if hasattr(self, "_max_len"):
            self._hist = _pad_histories(self._sequences(ds), self._max_len, self._width)

    def _forget_user_rows(self, rows: np.ndarray) -> None:
        self._hist[rows] = 0  # 0 is padding: an empty history

    def _item_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._table is None:
            self._net.eval()
            with torch.no_grad(), autocast_context(self.device):
                p, b = self._net.item_table()
            self._table = (p.float(), b.float())
        return self._table

    @torch.no_grad()
    def _score_tokens(self, tokens: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        net = self._net
        net.eval()
        p, b = self._item_table()
        out = np.empty((len(tokens), self.n_items), dtype=np.float32)
        for start in range(0, len(tokens), batch_size):
            seq = torch.from_numpy(tokens[start : start + batch_size].astype(np.int64)).to(self.device)
            with autocast_context(self.device):
                q, b_u = net.user_vectors(seq, p)
            s = q.float() @ p.T + b[None] + b_u.float()[:, None]
            out[start : start + len(seq)] = s.cpu().numpy()
        return out

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        tokens = self._hist[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))]
        return self._score_tokens(tokens)

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        """Untimed histories (item indices, oldest first): each item is a basket of its own."""
        seqs = [[np.array([i]) for i in h] for h in histories]
        tokens = _pad_histories(seqs, self._max_len, self._width)
        return self._score_tokens(tokens)

    def score_order_histories(self, histories: list[list[int]], orders: list[list]) -> np.ndarray:
        """Histories with each line's order key: grouped into orders (distinct items ascending, as
        the training data's ``basket_sequences``) when the model was trained on orders."""
        if not self.config.baskets:
            return self.score_histories(histories)
        return self.score_basket_histories([[np.unique(np.asarray(b, np.int64)) for b in group_orders(h, o)]
                                            for h, o in zip(histories, orders, strict=True)])

    def score_basket_histories(self, histories: list[list[list[int]]]) -> np.ndarray:
        """Histories as baskets (lists of item indices), oldest basket first."""
        seqs = [_units([np.asarray(b, np.int64) for b in h], not self.config.baskets) for h in histories]
        tokens = _pad_histories(seqs, self._max_len, self._width)
        return self._score_tokens(tokens)

    def to(self, device: str | torch.device) -> Sequential:
        """Move the network to ``device`` (resolved like everywhere else) for scoring."""
        self.device = resolve_device(device)
        self._net.to(self.device)
        self._table = None
        return self

    # ---------------------------------------------------------- persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"hist": self._hist}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._hist = arrays["hist"]

    def _save_extra(self, path: Path) -> None:
        torch.save({k: v.detach().cpu() for k, v in self._net.state_dict().items()}, path / "model.pt")

    def _load_extra(self, path: Path) -> None:
        try:
            self.device = resolve_device(self.config.device)
        except ValueError:  # trained on a GPU box, served on a CPU one
            self.device = torch.device("cpu")
        self._text_dim = int(self.fit_info.get("text_dim", 0))
        self._dim, self._max_len = int(self.fit_info["dim"]), int(self.fit_info["max_len"])
        self._width = int(self.fit_info["width"])
        net = SequentialNet(self.n_items, self._text_dim, self.config, self._dim, self._max_len)
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self._net = net.to(self.device).eval()
        self._table = None

    def __deepcopy__(self, memo: dict) -> Sequential:  # pragma: no cover - convenience
        clone = copy.copy(self)
        clone._net = copy.deepcopy(self._net, memo)
        clone._table = None
        return clone
