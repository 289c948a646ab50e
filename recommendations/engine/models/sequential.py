"""The flagship: a SASRec-style causal transformer over each customer's recent items.

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

Training: next-item prediction at every position of every chunk of ``max_len`` items
of each customer's history, full softmax cross-entropy over the catalogue (sampled
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

from ..data import Dataset
from ..device import autocast_context, needs_grad_scaler, resolve_device
from .base import Progress, Recommender


@dataclass
class SequentialConfig:
    max_len: int = 100
    dim: int = 64
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
    max_eval_users: int = 5000  # validation users scored per epoch (a fixed random subset)
    max_train_seconds: float | None = None
    fixed_epochs: int | None = None  # train exactly this many epochs (refits without valid)
    device: str = "auto"
    torch_threads: int | None = None  # CPU threads while fitting; 1 avoids oversubscription
    seed: int = 0


class SequentialNet(nn.Module):
    """Item table + causal transformer. Item index i is token i + 1; token 0 is padding."""

    def __init__(self, n_items: int, text_dim: int, cfg: SequentialConfig) -> None:
        super().__init__()
        d = cfg.dim
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
        self.pos_emb = nn.Embedding(cfg.max_len, d)
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

    def encode(self, seq: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, L, d] for left-padded token sequences [B, L]."""
        bsz, length = seq.shape
        table = torch.cat([p.new_zeros(1, p.shape[1]), p], dim=0)
        x = table[seq] * math.sqrt(p.shape[1]) + self.pos_emb.weight[-length:][None]
        x = self.in_drop(x)
        pad = seq == 0
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seq.device), 1)
        blocked = causal[None] | pad[:, None, :]
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=seq.device)[None]
        mask = blocked.repeat_interleave(self.cfg.n_heads, dim=0)
        h = self.encoder(x, mask=mask)
        return self.norm(h)

    def user_vectors(self, seq: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_u [B, d], b_u [B]) from the last position."""
        q = self.encode(seq, p)[:, -1]
        return q, self.user_bias(q).squeeze(-1)


def _chunks(seqs: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut each history into windows of max_len + 1 items -> (inputs, targets) tokens,
    left-padded [n_chunks, max_len]. Windows tile the history from its end."""
    inputs, targets = [], []
    for s in seqs:
        tokens = s + 1
        end = len(tokens)
        while end > 1:
            window = tokens[max(0, end - max_len - 1) : end]
            inp = np.zeros(max_len, np.int64)
            tgt = np.zeros(max_len, np.int64)
            inp[max_len - len(window) + 1 :] = window[:-1]
            tgt[max_len - len(window) + 1 :] = window[1:]
            inputs.append(inp)
            targets.append(tgt)
            end -= max_len
    if not inputs:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.stack(inputs), np.stack(targets)


def _pad_histories(histories: list, max_len: int) -> np.ndarray:
    out = np.zeros((len(histories), max_len), np.int64)
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64)[-max_len:]
        if len(h):
            out[r, max_len - len(h) :] = h + 1
    return out


class Sequential(Recommender):
    algorithm = "sequential"
    config_cls = SequentialConfig

    # ------------------------------------------------------------------ fit
    def _fit(
        self,
        train: Dataset,
        *,
        item_embeddings: np.ndarray | None,
        valid: np.ndarray | None,
        progress: Progress | None,
    ) -> None:
        threads = torch.get_num_threads()
        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        try:
            self._fit_loop(train, item_embeddings, valid, progress)
        finally:
            torch.set_num_threads(threads)

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
        net = SequentialNet(train.n_items, self._text_dim, cfg)
        has_events = train.item_counts() > 0
        net.id_mask.copy_(torch.from_numpy(has_events.astype(np.float32)))
        if text is not None:
            net.text.copy_(torch.from_numpy(np.asarray(text, dtype=np.float32)))
        self._net = net.to(self.device)
        self._table = None

        inputs, targets = _chunks(train.sequences(), cfg.max_len)
        sampled = train.n_items > cfg.full_softmax_max_items
        softmax_mask = torch.zeros(train.n_items, device=self.device)
        softmax_mask[torch.from_numpy(~has_events)] = float("-inf")
        warm_items = torch.from_numpy(np.flatnonzero(has_events)).to(self.device)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler("cuda", enabled=needs_grad_scaler(self.device))

        eval_targets = None
        if valid is not None and len(valid) and cfg.fixed_epochs is None:
            eval_targets = np.asarray(valid, dtype=np.int64).reshape(-1, 2)
            if len(eval_targets) > cfg.max_eval_users:
                pick = rng.choice(len(eval_targets), cfg.max_eval_users, replace=False)
                eval_targets = eval_targets[np.sort(pick)]
        n_epochs = cfg.fixed_epochs or cfg.max_epochs
        # Small datasets: shrink the batch so an epoch is still >= ~min_steps_per_epoch steps.
        batch_size = int(min(cfg.batch_size, max(16, len(inputs) // cfg.min_steps_per_epoch)))
        best = (-1.0, 0, None)  # (ndcg, epoch, state)
        started = time.perf_counter()
        history = []
        for epoch in range(1, n_epochs + 1):
            net.train()
            order = rng.permutation(len(inputs))
            total, n_batches = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                seq = torch.from_numpy(inputs[idx]).to(self.device)
                tgt = torch.from_numpy(targets[idx]).to(self.device)
                with autocast_context(self.device):
                    loss = self._loss(net, seq, tgt, softmax_mask, sampled, warm_items)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
                total += float(loss.detach())
                n_batches += 1
            info = {"epoch": epoch, "loss": total / max(n_batches, 1),
                    "seconds": round(time.perf_counter() - started, 2)}
            self._table = None
            if eval_targets is not None:
                metrics = evaluate(self, train, eval_targets, k=10, with_coverage=False)
                info["valid_ndcg"] = metrics["ndcg@10"]
                info["valid_hr"] = metrics["hr@10"]
                if metrics["ndcg@10"] > best[0]:
                    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    best = (metrics["ndcg@10"], epoch, state)
            else:
                info["valid_ndcg"] = None
                best = (-1.0, epoch, None)
            info["best_epoch"] = best[1]
            history.append(info)
            if progress:
                progress(dict(info))
            out_of_time = cfg.max_train_seconds and time.perf_counter() - started > cfg.max_train_seconds
            stalled = eval_targets is not None and epoch - best[1] >= cfg.patience and epoch >= cfg.min_epochs
            if stalled or out_of_time:
                break
        if best[2] is not None:
            net.load_state_dict(best[2])
        net.eval()
        self._table = None
        self.fit_info = {"best_epoch": best[1], "best_valid_ndcg": best[0] if best[0] >= 0 else None,
                         "epochs_run": len(history), "text_dim": self._text_dim,
                         "train_seconds": round(time.perf_counter() - started, 2),
                         "n_chunks": int(len(inputs)), "sampled_softmax": bool(sampled)}

    def _loss(self, net: SequentialNet, seq: torch.Tensor, tgt: torch.Tensor,
              softmax_mask: torch.Tensor, sampled: bool, warm_items: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        p, b = net.item_table()
        h = net.encode(seq, p)
        valid = tgt > 0
        h, t = h[valid], tgt[valid] - 1  # [N, d], [N]
        b_u = net.user_bias(h).squeeze(-1)
        pos_logit = (h * p[t]).sum(-1) + b[t]
        if not sampled:
            # -inf bias for items without training events: out of the softmax, for free
            logits = (h @ p.T + (b + softmax_mask)).float()
            ce = F.cross_entropy(logits, t)
        else:
            # shared uniform negatives over items with events; accidental hits masked
            neg = warm_items[torch.randint(0, len(warm_items), (cfg.n_negatives,), device=h.device)]
            neg_logits = (h @ p[neg].T + b[neg]).float()
            neg_logits = neg_logits.masked_fill(neg[None] == t[:, None], float("-inf"))
            logits = torch.cat([pos_logit.float()[:, None], neg_logits], dim=1)
            ce = F.cross_entropy(logits, torch.zeros(len(t), dtype=torch.long, device=h.device))
        if cfg.bce_weight <= 0:
            return ce
        neg1 = torch.randint(0, net.n_items, (len(t),), device=h.device)
        neg_logit = (h * p[neg1]).sum(-1) + b[neg1]
        bce = F.binary_cross_entropy_with_logits(
            torch.cat([pos_logit + b_u, neg_logit + b_u]).float(),
            torch.cat([torch.ones_like(pos_logit), torch.zeros_like(neg_logit)]).float(),
        )
        return ce + cfg.bce_weight * bce

    # -------------------------------------------------------------- scoring
    def _set_histories(self, ds: Dataset) -> None:
        self._hist = _pad_histories(ds.sequences(), self.config.max_len)

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
            seq = torch.from_numpy(tokens[start : start + batch_size]).to(self.device)
            with autocast_context(self.device):
                q, b_u = net.user_vectors(seq, p)
            s = q.float() @ p.T + b[None] + b_u.float()[:, None]
            out[start : start + len(seq)] = s.cpu().numpy()
        return out

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_tokens(self._hist[np.atleast_1d(np.asarray(user_idx, dtype=np.int64))])

    def score_histories(self, histories: list[list[int]]) -> np.ndarray:
        return self._score_tokens(_pad_histories(histories, self.config.max_len))

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
        net = SequentialNet(self.n_items, self._text_dim, self.config)
        state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        self._net = net.to(self.device).eval()
        self._table = None

    def __deepcopy__(self, memo: dict) -> Sequential:  # pragma: no cover - convenience
        clone = copy.copy(self)
        clone._net = copy.deepcopy(self._net, memo)
        clone._table = None
        return clone
