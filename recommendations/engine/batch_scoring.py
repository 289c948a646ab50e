"""Scoring every customer at hardware speed: packed histories in, (rows, items, scores) batches out.

Why: the per-customer Python of the first scoring path (lists per customer, 256-row batches, numpy
top-k) kept a GPU ~1 % busy and a CPU far below its matmul rate. Here

- histories are packed **once** into two contiguous arrays (CSR: ``indptr`` int64, ``indices``
  int32 item indices, oldest first per customer), never a Python list per customer;
- a *scorer* turns one slice of packed histories into a dense ``[batch, n_items]`` score block on
  the device (matrix product under ``torch.inference_mode``; bf16 autocast on CUDA, float32 on CPU);
- exclusions (seen / rejected items) and the catalogue mask are applied on the device, and
  ``torch.topk`` runs there too, so only ``batch × k`` numbers ever leave it;
- :func:`score_batches` yields :class:`ScoredBatch` es, so a consumer (a database writer thread)
  stores batch *n* while batch *n + 1* is computed.

The CUDA path is chosen by :func:`~.device.resolve_device` ("auto") and is the same code as the CPU
path. No Django here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional as F

from .ann import CANDIDATE_FACTOR, resolve_ann
from .data import group_orders
from .device import autocast_context, resolve_device
from .models.sequential import padded_table

# Elements of one dense score block: 2**25 float32 = 128 MiB (a few hundred MB with top-k scratch).
BLOCK_ELEMENTS = 1 << 25
MAX_BATCH = 16_384
# On the CPU a batch is scored in row chunks of at most this many scores (16 MiB of float32): the
# product, the masks and the top-k then work on a block that stays in the last-level cache. Measured
# on a 10,000-item catalogue: the bare product runs ~2x faster per row on 400-row chunks than on a
# 2048-row block that spills to memory, and the top-k reads the block from cache. Only with one
# intra-op thread (the CPU scoring set-up: one process per core, see docs/scaling.md): with several,
# every extra small op is one more parallel region and barrier, which cost more than the cache saves
# (measured 0.7x on the shared 2-core box), so the batch stays one block and one ``torch.topk``.
CPU_CHUNK_ELEMENTS = 1 << 22
# Grouped top-k (CPU): strided groups of this many columns are reduced to their max first.
TOPK_GROUP = 8


@dataclass(frozen=True)
class PackedHistories:
    """Item-index histories of ``n`` customers in CSR form: row ``r`` is
    ``indices[indptr[r]:indptr[r + 1]]`` (oldest first).

    ``starts`` (optional, bool [nnz]): True where an entry begins a new order (basket); the entries
    of one order are contiguous. Without it every entry is an order of its own (a live session's
    events). A model trained on orders (the basket-aware sequential model) must be served orders:
    fed one line per position it scored 0.2456 NDCG@10 against 0.2628 on the same customers' orders
    (synthetic retail shop, 600 customers), and what validation measured was the latter."""

    indptr: np.ndarray  # int64 [n + 1], indptr[0] == 0
    indices: np.ndarray  # int32 [nnz]
    starts: np.ndarray | None = None  # bool [nnz]: an order begins here (None: every entry does)

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or len(self.indptr) == 0 or self.indptr[0] != 0:
            raise ValueError("indptr must be 1-D and start at 0.")
        if int(self.indptr[-1]) != len(self.indices):
            raise ValueError(f"indptr ends at {int(self.indptr[-1])} but there are {len(self.indices)} indices.")
        if self.starts is not None and len(self.starts) != len(self.indices):
            raise ValueError(f"starts has {len(self.starts)} entries but there are {len(self.indices)} indices.")

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    @classmethod
    def from_lists(cls, histories: Sequence[Sequence[int]],
                   orders: Sequence[Sequence[object]] | None = None) -> PackedHistories:
        """Pack Python lists (oldest first). ``orders``: each entry's order key (an order id, or the
        timestamp when there is none), parallel to ``histories``; the lines of one order are then
        packed together, at the place of its first line, as the training data groups them."""
        if orders is not None:
            grouped = [_group_orders(h, o) for h, o in zip(histories, orders, strict=True)]
            histories, order_starts = [h for h, _ in grouped], [flags for _, flags in grouped]
        lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        indptr = np.zeros(len(histories) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.fromiter((i for h in histories for i in h), dtype=np.int32, count=int(indptr[-1]))
        starts = None if orders is None else np.fromiter(
            (f for flags in order_starts for f in flags), dtype=bool, count=int(indptr[-1]))
        return cls(indptr, indices, starts)

    @classmethod
    def from_events(cls, rows: np.ndarray, items: np.ndarray, n_rows: int) -> PackedHistories:
        """Pack (row, item) event arrays already ordered by row then time (as a SQL ``ORDER BY``)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (np.any(np.diff(rows) < 0) or rows[0] < 0 or rows[-1] >= n_rows):
            raise ValueError("rows must be sorted and within [0, n_rows).")
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, np.ascontiguousarray(items, dtype=np.int32))

    def slice(self, lo: int, hi: int) -> PackedHistories:
        """Rows ``lo:hi`` as views (indptr rebased to 0)."""
        start, end = int(self.indptr[lo]), int(self.indptr[hi])
        return PackedHistories(self.indptr[lo : hi + 1] - start, self.indices[start:end],
                               None if self.starts is None else self.starts[start:end])

    def row_col(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, item) int64 coordinates of every entry, for scatter on a score block."""
        rows = np.repeat(np.arange(len(self), dtype=np.int64), self.lengths)
        return rows, self.indices.astype(np.int64)

    def last_tokens(self, max_len: int) -> np.ndarray:
        """The latest ``max_len`` items of each row as left-padded tokens (item + 1; 0 = padding),
        int64 [n, max_len], built without a Python loop."""
        n = len(self)
        out = np.zeros((n, max_len), dtype=np.int64)
        lengths = self.lengths
        take = np.minimum(lengths, max_len)
        if not take.sum():
            return out
        rows = np.repeat(np.arange(n, dtype=np.int64), take)
        # position within the kept tail: 0..take-1 for each row
        starts = np.repeat(np.cumsum(take) - take, take)
        pos = np.arange(len(rows), dtype=np.int64) - starts
        src = np.repeat(self.indptr[1:] - take, take) + pos
        out[rows, max_len - np.repeat(take, take) + pos] = self.indices[src].astype(np.int64) + 1
        return out

    def last_order_tokens(self, max_len: int, width: int) -> np.ndarray:
        """The latest ``max_len`` orders of each row as left-padded basket tokens, int64
        [n, max_len, width] (item + 1; 0 = padding): each order's distinct items ascending, its
        ``width`` highest when it has more. Exactly what the sequential model's evaluation feeds
        (``Sequential._pad_histories`` of the dataset's ``basket_sequences``), built without a Python
        loop. Without ``starts`` every entry is an order of its own."""
        n = len(self)
        out = np.zeros((n, max_len, width), dtype=np.int64)
        if not len(self.indices):
            return out
        rows = np.repeat(np.arange(n, dtype=np.int64), self.lengths)
        starts = np.ones(len(self.indices), bool) if self.starts is None else self.starts.copy()
        starts[self.indptr[:-1][self.lengths > 0]] = True  # a row always begins an order
        order_of = np.cumsum(starts) - 1  # global order number of each entry
        items = self.indices.astype(np.int64)
        sort = np.lexsort((items, order_of))  # items ascending inside each order
        order_of, items, rows = order_of[sort], items[sort], rows[sort]
        keep = np.r_[True, (order_of[1:] != order_of[:-1]) | (items[1:] != items[:-1])]  # distinct items
        order_of, items, rows = order_of[keep], items[keep], rows[keep]
        # within each order: rank from its end; keep the ``width`` last (highest) items
        first = np.r_[True, order_of[1:] != order_of[:-1]]
        order_start = np.flatnonzero(first)
        size = np.diff(np.r_[order_start, len(order_of)])
        entry_order = np.cumsum(first) - 1  # 0.. dense order number
        rank = np.arange(len(order_of)) - order_start[entry_order]
        skip = np.maximum(size - width, 0)[entry_order]
        keep = rank >= skip
        slot = (rank - skip)[keep]
        # within each row: the order's number counted from the row's last order; keep the latest max_len
        order_row = rows[order_start]
        n_orders = np.bincount(order_row, minlength=n)
        row_first = np.cumsum(n_orders) - n_orders
        from_end = n_orders[order_row] - 1 - (np.arange(len(order_start)) - row_first[order_row])
        position = (max_len - 1 - from_end)[entry_order][keep]
        ok = position >= 0
        out[rows[keep][ok], position[ok], slot[ok]] = items[keep][ok] + 1
        return out

    def to_lists(self) -> list[list[int]]:
        return [self.indices[self.indptr[r] : self.indptr[r + 1]].tolist() for r in range(len(self))]


class Scorer(Protocol):
    """Turns a slice of packed histories into a dense float score block on ``device``."""

    n_items: int
    device: torch.device

    def block(self, histories: PackedHistories) -> torch.Tensor:
        """Scores [len(histories), n_items] (float32 on CPU; bf16/float32 on CUDA), higher = better."""
        ...


class FactorScorer:
    """``score(u, i) = b_i + <q_u, p_i>`` with ``q_u`` the mean of the vectors of the customer's items
    (an item-pooling user tower; ``EmbeddingBag`` reads the packed arrays directly). Used by the
    benchmark and for factor models whose user vector is a function of history."""

    def __init__(self, item_vectors: np.ndarray, item_bias: np.ndarray | None = None,
                 device: str | torch.device = "auto") -> None:
        self.device = resolve_device(device)
        self.p = torch.as_tensor(np.ascontiguousarray(item_vectors, dtype=np.float32), device=self.device)
        self.n_items = self.p.shape[0]
        bias = np.zeros(self.n_items, np.float32) if item_bias is None else item_bias
        self.b = torch.as_tensor(np.asarray(bias, dtype=np.float32), device=self.device)
        # [p | b] so that one matrix product adds the bias: [q | 1] @ [p | b]^T
        self._pb_t = torch.cat([self.p, self.b[:, None]], dim=1).T.contiguous()

    def user_vectors(self, histories: PackedHistories) -> torch.Tensor:
        """Mean item vector per row (zeros for an empty history). A sum bag divided by the lengths:
        ``embedding_bag(mode="mean")`` costs ~5x the sum on CPU."""
        indices = torch.as_tensor(histories.indices, device=self.device).long()
        offsets = torch.as_tensor(histories.indptr[:-1], device=self.device)
        lengths = torch.as_tensor(histories.lengths, device=self.device).clamp_(min=1)
        return F.embedding_bag(indices, self.p, offsets, mode="sum") / lengths[:, None].to(self.p.dtype)

    def query(self, histories: PackedHistories) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_u, 0): the score is ``b_i + <q_u, p_i>`` (for :class:`~.ann.AnnScorer`)."""
        q = self.user_vectors(histories)
        return q, q.new_zeros(len(q))

    def block(self, histories: PackedHistories, out: torch.Tensor | None = None) -> torch.Tensor:
        """The dense scores; ``out`` (float32 [>= rows, n_items], CPU) is a buffer to write them
        into, reused across chunks by :func:`score_batches` (a fresh 16 MiB block per chunk costs
        ~25 % more than the product itself in page faults)."""
        q = self.user_vectors(histories)
        q1 = torch.cat([q, q.new_ones(len(q), 1)], dim=1)
        if out is not None and self.device.type == "cpu":
            return torch.mm(q1, self._pb_t, out=out[: len(q1)])
        with autocast_context(self.device):
            return q1 @ self._pb_t


class SequentialScorer:
    """The transformer of ``engine.models.Sequential``: ``b_u + b_i + <q_u, p_i>`` from the latest
    positions, the item table computed once. A model trained on orders is fed the latest orders when
    the histories carry them (``PackedHistories.starts``), exactly as its validation fed it; without
    them, like ``Sequential.score_histories``, each history item is a position of its own (a
    one-item basket). The model's cold stage (``cold_slots``), when it has an active one, is applied
    to each block."""

    def __init__(self, model, device: str | torch.device | None = None) -> None:
        if device is not None:
            model.to(device)
        self.model = model
        self.device = model.device
        self.n_items = model.n_items
        p, b = model._item_table()
        self.p, self.b = p.float().contiguous(), b.float().contiguous()
        self.table = padded_table(self.p)  # built once: encode() would copy the item table per block
        self.max_len = int(getattr(model, "_max_len", model.config.max_len))
        self.width = getattr(model, "_width", None)  # basket-token models: [B, L, width]
        self.cold_stage = cold_stage_of(model)
        self.cold_picks: np.ndarray | None = None  # the cold stage's choice for the last block

    def tokens(self, histories: PackedHistories) -> np.ndarray:
        if self.width is not None and histories.starts is not None:  # orders in, orders out
            return histories.last_order_tokens(self.max_len, int(self.width))
        flat = histories.last_tokens(self.max_len)
        if self.width is None:
            return flat
        tokens = np.zeros((len(flat), self.max_len, int(self.width)), dtype=np.int64)
        tokens[:, :, 0] = flat
        return tokens

    def query(self, histories: PackedHistories) -> tuple[torch.Tensor, torch.Tensor]:
        """(q_u, b_u) float32: the score is ``b_u + b_i + <q_u, p_i>`` (for :class:`~.ann.AnnScorer`;
        not with a cold stage, which rewrites dense rows)."""
        net = self.model._net
        net.eval()
        with autocast_context(self.device):
            q, b_u = net.user_vectors(torch.as_tensor(self.tokens(histories), device=self.device), self.p)
        return q.float(), b_u.float()

    def block(self, histories: PackedHistories) -> torch.Tensor:
        net = self.model._net
        net.eval()
        tokens = self.tokens(histories)
        with autocast_context(self.device):
            q, b_u = net.user_vectors(torch.as_tensor(tokens, device=self.device), self.p, self.table)
            s = q @ self.p.T
        s = s.float() + self.b[None] + b_u.float()[:, None]
        if self.cold_stage is not None:  # on the CPU, exactly as the model's served_score_histories
            staged, self.cold_picks = self.cold_stage.choose_and_apply(s.cpu().numpy(), history_arrays(histories))
            s = torch.as_tensor(staged, device=self.device)
        return s


class RecommenderScorer:
    """Any ``engine.models.Recommender`` through its ``score_histories`` (EASE, item-kNN,
    popularity): the model computes on the CPU; masking and top-k still run vectorised."""

    def __init__(self, model, device: str | torch.device = "cpu") -> None:
        self.model = model
        self.n_items = model.n_items
        self.device = resolve_device(device)
        self.cold_picks: np.ndarray | None = None  # the cold stage's choice for the last block

    def block(self, histories: PackedHistories) -> torch.Tensor:
        scores, self.cold_picks = self.model.served_score_histories_and_picks(histories.to_lists())
        return torch.from_numpy(np.asarray(scores, dtype=np.float32)).to(self.device)


def scorer_for(model, device: str | torch.device = "auto", ann: str = "exact") -> Scorer:
    """The fastest scorer for a loaded recommender. ``ann`` ("auto", "exact", "faiss"; see
    :func:`~.ann.resolve_ann`) puts a FAISS candidate index in front of the sequential model's
    exact scores on large catalogues; the index is built once per loaded model and kept on it."""
    if getattr(model, "algorithm", "") == "sequential":
        scorer = SequentialScorer(model, device=None if str(device) == "auto" else device)
        if scorer.cold_stage is not None or resolve_ann(ann, scorer.n_items) == "exact":
            return scorer
        from .ann import AnnScorer, ItemIndex, item_rows

        index = getattr(model, "_ann_index", None)
        if index is None:
            index = model._ann_index = ItemIndex(item_rows(scorer))
        return AnnScorer(scorer, index)
    return RecommenderScorer(model)


def cold_stage_of(model):
    """The model's cold stage when it is active (it changes lists), else None."""
    stage = getattr(model, "cold_stage", None)
    return stage if stage is not None and stage.active else None


def _group_orders(items: Sequence[int], orders: Sequence[object]) -> tuple[list[int], list[bool]]:
    """(items regrouped by order (:func:`~.data.group_orders`); True where an order begins). When
    each order's lines are already together (timestamps always are) nothing moves."""
    starts = [True, *map(operator.ne, orders[1:], orders[:-1])] if len(orders) else []
    if len(items) == len(orders) and sum(starts) == len(set(orders)):
        return list(items), starts
    grouped = group_orders(items, orders)
    return [i for lines in grouped for i in lines], [j == 0 for lines in grouped for j in range(len(lines))]


def history_arrays(histories: PackedHistories) -> list[np.ndarray]:
    """Each row's items as an int64 array (the cold stage's input)."""
    return [histories.indices[histories.indptr[r] : histories.indptr[r + 1]].astype(np.int64)
            for r in range(len(histories))]


@dataclass
class ScoredBatch:
    rows: np.ndarray  # int64 [B]: positions in the packed histories
    items: np.ndarray  # int32 [B, k]: item indices, best first
    scores: np.ndarray  # float32 [B, k]; -inf where fewer than k items were allowed
    # int64 [B, slots]: the cold items the model's cold stage chose for each row's slots (-1 = none),
    # as the scorer chose them for these scores; None when no cold stage was applied
    cold_picks: np.ndarray | None = None


def default_batch_size(n_items: int) -> int:
    return max(1, min(MAX_BATCH, BLOCK_ELEMENTS // max(1, n_items)))


def score_batches(
    scorer: Scorer,
    histories: PackedHistories,
    k: int,
    *,
    exclude: PackedHistories | None = None,
    allowed: np.ndarray | None = None,
    batch_size: int | None = None,
    rows: Iterable[int] | None = None,
) -> Iterator[ScoredBatch]:
    """Top-``k`` per customer, one :class:`ScoredBatch` per ``batch_size`` customers.

    ``exclude`` (same rows as ``histories``) lists items that must not be recommended to a row
    (bought, rejected); ``allowed`` is a bool [n_items] catalogue mask (in stock, active).
    ``rows`` restricts scoring to a subset of row positions (contiguous ranges are fastest).
    """
    if exclude is not None and len(exclude) != len(histories):
        raise ValueError("exclude must have one row per history.")
    k = max(0, min(int(k), scorer.n_items))
    batch = batch_size or default_batch_size(scorer.n_items)
    device = scorer.device
    blocked = None
    if allowed is not None:
        if len(allowed) != scorer.n_items:
            raise ValueError(f"allowed has {len(allowed)} entries for {scorer.n_items} items.")
        blocked = torch.as_tensor(~np.asarray(allowed, dtype=bool), device=device)
    spans = [(lo, min(lo + batch, len(histories))) for lo in range(0, len(histories), batch)]
    if rows is not None:
        spans = _spans(np.asarray(list(rows), dtype=np.int64), batch)
    # one CPU thread: score each batch in cache-sized row chunks (see CPU_CHUNK_ELEMENTS)
    chunk = max(1, min(batch, CPU_CHUNK_ELEMENTS // max(1, scorer.n_items))) if _cpu_single_thread(device) else batch
    # a factor scorer on one CPU thread writes every chunk into one reused buffer
    buffer = (torch.empty(chunk, scorer.n_items) if isinstance(scorer, FactorScorer) and chunk < batch
              and _cpu_single_thread(device) else None)
    with torch.inference_mode():
        for lo, hi in spans:
            parts, picks = [], []
            for c_lo in range(lo, hi, chunk):
                parts.append(_score_chunk(scorer, histories, exclude, blocked, k, c_lo, min(c_lo + chunk, hi), buffer))
                picks.append(getattr(scorer, "cold_picks", None))  # what the block just chose, if anything
            values = parts[0][0] if len(parts) == 1 else torch.cat([v for v, _ in parts])
            items = parts[0][1] if len(parts) == 1 else torch.cat([i for _, i in parts])
            yield ScoredBatch(
                rows=np.arange(lo, hi, dtype=np.int64),
                items=items.to(torch.int32).cpu().numpy(),
                scores=values.float().cpu().numpy(),
                cold_picks=None if any(p is None for p in picks) else np.concatenate(picks),
            )


def _score_chunk(scorer: Scorer, histories: PackedHistories, exclude: PackedHistories | None,
                 blocked: torch.Tensor | None, k: int, lo: int, hi: int,
                 buffer: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (values, items) of rows ``lo:hi``: the dense block, the catalogue mask, the exclusions."""
    if hasattr(scorer, "candidates"):
        return _score_candidates(scorer, histories, exclude, blocked, k, lo, hi)
    part = histories.slice(lo, hi)
    scores = scorer.block(part) if buffer is None else scorer.block(part, out=buffer)
    if blocked is not None:
        scores.masked_fill_(blocked[None], -math.inf)
    if exclude is not None:
        r, c = exclude.slice(lo, hi).row_col()
        if len(r):
            # one flat index_fill_ instead of a 2-D index_put_ (only the excluded cells are touched)
            flat = torch.as_tensor(r * scores.shape[1] + c, device=scores.device)
            scores = scores.contiguous()
            scores.view(-1).index_fill_(0, flat, -math.inf)
    return top_k_ties_by_index(scores, k)


def _score_candidates(scorer, histories: PackedHistories, exclude: PackedHistories | None,
                      blocked: torch.Tensor | None, k: int, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Like the dense path over the scorer's candidates only (``AnnScorer``): exact scores of
    ``CANDIDATE_FACTOR × k`` candidates (plus room for the row's exclusions), masks, top-k."""
    excluded = exclude.slice(lo, hi) if exclude is not None else None
    room = int(excluded.lengths.max()) if excluded is not None and len(excluded) else 0
    scores, items = scorer.candidates(histories.slice(lo, hi), CANDIDATE_FACTOR * k + room)
    if blocked is not None:
        scores.masked_fill_(blocked[items], -math.inf)
    if excluded is not None and room:
        r, c = excluded.row_col()
        n = scorer.n_items
        keys = torch.as_tensor(r * n + c, device=scores.device)
        rows = torch.arange(len(scores), device=scores.device)[:, None]
        scores.masked_fill_(torch.isin(rows * n + items, keys), -math.inf)
    values, pos = top_k_ties_by_index(scores, min(k, scores.shape[1]))
    return values, items.gather(1, pos)  # k <= n_items <= candidates: always k columns


def _cpu_single_thread(device: torch.device) -> bool:
    return device.type == "cpu" and torch.get_num_threads() == 1


def top_k_ties_by_index(scores: torch.Tensor, k: int, *,
                        grouped: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise top-k, best first; equal scores are ordered (and cut at the k-th place) by item
    index, lowest first, so results are deterministic and the same on every device and sharding
    (``torch.topk`` alone leaves ties in an unspecified order, and models like item-kNN tie a lot).
    ``grouped`` (default: on a single-threaded CPU) finds the candidates with :func:`_top_candidates`;
    the result is the same either way."""
    if k == 0:
        empty = scores.new_zeros((scores.shape[0], 0))
        return empty, empty.long()
    n = scores.shape[1]
    if grouped is None:
        grouped = _cpu_single_thread(scores.device)
    values, items = (_top_candidates(scores, min(k + 1, n)) if grouped
                     else torch.topk(scores, min(k + 1, n), dim=1, sorted=True))
    # a tie at the cut (more candidates than places) shows as the (k+1)-th value equalling the k-th
    at_risk = values[:, k] == values[:, k - 1] if n > k else torch.zeros_like(values[:, 0], dtype=torch.bool)
    values, items = values[:, :k], items[:, :k]
    kth = values[:, -1:]
    if bool(at_risk.any()):
        rows = torch.nonzero(at_risk).squeeze(1)
        block = scores[rows]
        cut = kth[rows]
        above = block > cut
        room = k - above.sum(dim=1, keepdim=True)
        tied = (block == cut) & (torch.cumsum((block == cut).int(), dim=1) <= room)
        chosen = torch.nonzero(above | tied)  # row-major: ascending item index within each row
        items[rows] = chosen[:, 1].view(len(rows), k)
        values[rows] = block.gather(1, items[rows])
    # best first; equal values by ascending index (sort by index, then a stable sort by value),
    # only for rows that hold equal values (continuous scores rarely do: sorting every row costs)
    tied_rows = torch.nonzero(at_risk | (values[:, 1:] == values[:, :-1]).any(dim=1)).squeeze(1)
    if len(tied_rows):
        v, i = values[tied_rows], items[tied_rows]
        by_index = torch.sort(i, dim=1).indices
        i, v = i.gather(1, by_index), v.gather(1, by_index)
        order = torch.sort(v, dim=1, descending=True, stable=True).indices
        values[tied_rows], items[tied_rows] = v.gather(1, order), i.gather(1, order)
    return values, items


def _top_candidates(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest values per row, sorted descending, and their columns; equal values at the
    cut may come from any of the tied columns (:func:`top_k_ties_by_index` repairs those rows).

    On the CPU, ``torch.topk`` over a wide row costs about as much as the matrix product that made it
    (it copies every (value, index) pair of the row). Here wide rows are first reduced to the max of
    strided groups of :data:`TOPK_GROUP` columns (one vectorised pass), the top-``k`` *groups* are
    found (recursively, the same way), and only their ``k × TOPK_GROUP`` columns go to ``torch.topk``.
    Exact: with ``t`` the ``k``-th largest group max, every value above ``t`` lies in a group whose
    max is above ``t`` (at most ``k - 1`` such groups, all taken), and the ``k`` groups taken hold
    at least ``k`` values ``>= t``; so the ``k`` values returned are the row's ``k`` largest.
    """
    n = scores.shape[1]
    g = TOPK_GROUP
    if scores.device.type != "cpu" or scores.dtype != torch.float32 or n <= 2 * g * k:
        return torch.topk(scores, k, dim=1, sorted=True)
    rows = scores.shape[0]
    groups = n // g
    scores = scores.contiguous()
    # group j holds columns j, j + groups, j + 2·groups, ...: the max is an elementwise max of g slices
    maxima = scores[:, : g * groups].view(rows, g, groups).amax(dim=1)
    top_groups = _top_candidates(maxima, k)[1]
    cols = (top_groups[:, :, None] + torch.arange(0, g * groups, groups)).view(rows, -1)
    if g * groups < n:  # the last n mod g columns are in no group: always candidates
        cols = torch.cat([cols, torch.arange(g * groups, n).expand(rows, -1)], dim=1)
    values, pos = torch.topk(scores.gather(1, cols), k, dim=1, sorted=True)
    return values, cols.gather(1, pos)


def _spans(rows: np.ndarray, batch: int) -> list[tuple[int, int]]:
    """Cut sorted row positions into contiguous runs of at most ``batch`` rows."""
    if not len(rows):
        return []
    rows = np.unique(rows)
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    spans = []
    for run in np.split(rows, breaks):
        for lo in range(0, len(run), batch):
            chunk = run[lo : lo + batch]
            spans.append((int(chunk[0]), int(chunk[-1]) + 1))
    return spans


def shard_ranges(n_rows: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous [lo, hi) row ranges covering ``n_rows`` (for workers / processes)."""
    size = math.ceil(n_rows / max(1, shards)) if n_rows else 0
    return [(lo, min(lo + size, n_rows)) for lo in range(0, n_rows, size)] if size else []
