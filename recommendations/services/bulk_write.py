"""Writing stored recommendations fast: columnar blocks, binary COPY, a writer thread.

Why: ``bulk_create`` builds a model object per row and an ``INSERT`` with bound parameters per
few thousand rows; 100 M rows a night need the database's bulk path. A
:class:`RecommendationBlock` holds one list's rows for many customers as numpy columns;
:func:`encode_copy_binary` turns it into PostgreSQL's binary ``COPY`` format with numpy (no
Python per row: rows are grouped by the byte length of their reason, so each group is one
fixed-width structured array). :class:`RecommendationWriter` streams blocks into the version's
table from a writer thread while the caller computes the next batch, with a bounded queue so memory
stays flat however many customers there are. On SQLite it falls back to ``bulk_create``.

A writer replaces the rows of one customer-id range of one version in one transaction, so a
retried shard is idempotent and a crashed one leaves nothing half-written.
"""

from __future__ import annotations

import queue
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np
from django.db import connection, transaction

from ..models import Recommendation
from .partitions import TABLE, write_target

COPY_COLUMNS = ("model_version_id", "customer_id", "list", "rank", "item_id", "score", "probability", "reason")
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
QUEUE_BLOCKS = 3  # blocks in flight between the scorer and the writer thread (memory bound)


@dataclass
class RecommendationBlock:
    """Rows of one list for many customers, as columns. ``reasons[reason_codes[j]]`` is row j's reason."""

    list_name: str
    customer_ids: np.ndarray  # int64 [N]
    ranks: np.ndarray  # int32 [N], 1 = best
    item_ids: np.ndarray  # int64 [N]: CRM item ids
    scores: np.ndarray  # float [N]
    probabilities: np.ndarray | None = None  # float [N], or None = NULL for every row
    reason_codes: np.ndarray | None = None  # int [N] into ``reasons``; None = no reason ("")
    reasons: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.customer_ids)

    @classmethod
    def from_top_k(cls, list_name: str, customer_ids: np.ndarray, item_ids: np.ndarray, scores: np.ndarray,
                   probabilities: np.ndarray | None = None, reason_codes: np.ndarray | None = None,
                   reasons: Sequence[str] = ()) -> RecommendationBlock:
        """From [B, k] top-k matrices (item ids, scores; -inf = no item), ranks 1..k, -inf dropped."""
        finite = np.isfinite(scores)
        k = scores.shape[1] if scores.ndim == 2 else 0
        ranks = np.broadcast_to(np.arange(1, k + 1, dtype=np.int32), scores.shape)
        return cls(
            list_name=list_name,
            customer_ids=np.broadcast_to(np.asarray(customer_ids, np.int64)[:, None], scores.shape)[finite],
            ranks=ranks[finite],
            item_ids=np.asarray(item_ids, np.int64)[finite],
            scores=np.asarray(scores)[finite],
            probabilities=None if probabilities is None else np.asarray(probabilities)[finite],
            reason_codes=None if reason_codes is None else np.asarray(reason_codes)[finite],
            reasons=reasons,
        )


def encode_copy_binary(version_id: int, block: RecommendationBlock) -> bytes:
    """The block's rows in PostgreSQL binary COPY format (without header/trailer), columns
    :data:`COPY_COLUMNS`."""
    n = len(block)
    if n == 0:
        return b""
    list_bytes = block.list_name.encode()
    vocab = [r[:300].encode() for r in block.reasons] or [b""]
    codes = np.zeros(n, np.int64) if block.reason_codes is None else np.asarray(block.reason_codes, np.int64)
    vocab_len = np.array([len(v) for v in vocab], dtype=np.int64)
    row_len = vocab_len[codes]
    vocab_arr = np.array(vocab, dtype=f"S{max(1, int(vocab_len.max()))}")
    with_prob = block.probabilities is not None
    parts = []
    for length in np.unique(row_len):
        rows = np.flatnonzero(row_len == length)
        fields = [
            ("n", ">i2"), ("l_mv", ">i4"), ("mv", ">i8"), ("l_cu", ">i4"), ("cu", ">i8"),
            ("l_li", ">i4"), ("li", f"S{len(list_bytes)}"), ("l_rk", ">i4"), ("rk", ">i4"),
            ("l_it", ">i4"), ("it", ">i8"), ("l_sc", ">i4"), ("sc", ">f8"), ("l_pr", ">i4"),
        ]
        if with_prob:
            fields.append(("pr", ">f8"))
        fields.append(("l_re", ">i4"))
        if length:
            fields.append(("re", f"S{int(length)}"))
        rec = np.empty(len(rows), dtype=np.dtype(fields))
        rec["n"] = len(COPY_COLUMNS)
        rec["l_mv"], rec["mv"] = 8, version_id
        rec["l_cu"], rec["cu"] = 8, block.customer_ids[rows]
        rec["l_li"], rec["li"] = len(list_bytes), list_bytes
        rec["l_rk"], rec["rk"] = 4, block.ranks[rows]
        rec["l_it"], rec["it"] = 8, block.item_ids[rows]
        rec["l_sc"], rec["sc"] = 8, block.scores[rows]
        if with_prob:
            rec["l_pr"], rec["pr"] = 8, block.probabilities[rows]
        else:
            rec["l_pr"] = -1
        rec["l_re"] = length
        if length:
            rec["re"] = vocab_arr[codes[rows]]
        parts.append(rec.tobytes())
    return b"".join(parts)


class RecommendationWriter:
    """Replace the rows of ``version`` for customer ids in [lo, hi] with the blocks put into it.

    Use as a context manager; the rows become visible (to the version's table) when it exits
    without error. On PostgreSQL the blocks go through binary COPY on the caller's connection,
    sent by a writer thread, so the next batch is scored while this one is written.
    """

    def __init__(self, version_id: int, lo: int, hi: int, *, threaded: bool = True) -> None:
        self.version_id, self.lo, self.hi = int(version_id), int(lo), int(hi)
        self.postgres = connection.vendor == "postgresql"
        self.threaded = threaded
        self.rows = 0
        self._atomic = transaction.atomic()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._error: BaseException | None = None

    def __enter__(self) -> RecommendationWriter:
        target = write_target(self.version_id) if self.postgres else TABLE
        self._atomic.__enter__()
        if not self.postgres:
            Recommendation.objects.filter(
                model_version_id=self.version_id, customer_id__gte=self.lo, customer_id__lte=self.hi).delete()
            return self
        self._cursor = connection.cursor()
        self._cursor.execute(f"DELETE FROM {target} WHERE model_version_id = %s AND customer_id BETWEEN %s AND %s",
                             [self.version_id, self.lo, self.hi])
        columns = ", ".join(COPY_COLUMNS)
        self._copy_cm = self._cursor.cursor.copy(f"COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)")
        self._copy = self._copy_cm.__enter__()
        self._copy.write(COPY_HEADER)
        if self.threaded:
            self._thread = threading.Thread(target=self._drain, name="recommendation-copy", daemon=True)
            self._thread.start()
        return self

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._copy.write(data)
                except BaseException as exc:  # reported to the caller on put/exit
                    self._error = exc

    def put(self, block: RecommendationBlock) -> None:
        if self._error is not None:
            raise self._error
        self.rows += len(block)
        if not self.postgres:
            Recommendation.objects.bulk_create(_objects(self.version_id, block), batch_size=5000)
            return
        data = encode_copy_binary(self.version_id, block)
        if self.threaded:
            self._queue.put(data)
        else:
            self._copy.write(data)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.postgres:
            if self.threaded:
                self._queue.put(None)
                self._thread.join()
            if exc is None and self._error is None:
                self._copy.write(COPY_TRAILER)
            error = exc or self._error
            try:
                self._copy_cm.__exit__(type(error) if error else None, error, None)
            finally:
                self._cursor.close()
            if error is not None and exc is None:
                self._atomic.__exit__(type(error), error, None)
                raise error
        self._atomic.__exit__(exc_type, exc, tb)


def _objects(version_id: int, block: RecommendationBlock) -> list[Recommendation]:
    reasons = list(block.reasons) or [""]
    codes = np.zeros(len(block), np.int64) if block.reason_codes is None else block.reason_codes
    probs = block.probabilities
    return [
        Recommendation(
            model_version_id=version_id, customer_id=int(block.customer_ids[j]), list=block.list_name,
            rank=int(block.ranks[j]), item_id=int(block.item_ids[j]), score=float(block.scores[j]),
            probability=None if probs is None else float(probs[j]), reason=reasons[int(codes[j])][:300],
        )
        for j in range(len(block))
    ]


def recommendations_replace(*, version_id: int, lo: int, hi: int, rows: Sequence[Recommendation]) -> int:
    """Replace the version's rows for customer ids in [lo, hi] with ``rows`` (model objects, as the
    per-customer reason code builds them), in one transaction: COPY on PostgreSQL."""
    with RecommendationWriter(version_id, lo, hi, threaded=False) as writer:
        by_list: dict[str, list[Recommendation]] = {}
        for row in rows:
            by_list.setdefault(row.list, []).append(row)
        for list_name, part in by_list.items():
            reasons = sorted({r.reason for r in part})
            code = {r: n for n, r in enumerate(reasons)}
            probs = [r.probability for r in part]
            with_prob = all(p is not None for p in probs)
            for null_prob in ([False] if with_prob else [False, True]):
                sel = [r for r in part if (r.probability is None) == null_prob] if not with_prob else part
                if not sel:
                    continue
                writer.put(RecommendationBlock(
                    list_name=list_name,
                    customer_ids=np.array([r.customer_id for r in sel], np.int64),
                    ranks=np.array([r.rank for r in sel], np.int32),
                    item_ids=np.array([r.item_id for r in sel], np.int64),
                    scores=np.array([r.score for r in sel], np.float64),
                    probabilities=None if null_prob else np.array([r.probability for r in sel], np.float64),
                    reason_codes=np.array([code[r.reason] for r in sel], np.int64),
                    reasons=reasons,
                ))
        return writer.rows
