"""Cold slots: a few places of the served discover list for cold items, whichever model serves it.

Why: cold items (fewer than ``cold_threshold`` training events) are the case the text path exists
for, and no collaborative model ranks them: on completejourney every model, the flagship included,
hit none of the 1,524 cold test targets while the text-only baseline hit a few. Blending text into
every score (the flagship's old cold blend) moved cold items up everywhere and cost ~40% of the
list's NDCG. This stage is the smallest intervention that reaches them: the base model's list is
kept, and ``slots`` places at the bottom of the top ``list_k`` (places ``list_k - slots + 1`` ..
``list_k``) go to the customer's best cold items by text: by default (``match="nearest"``) the
cold items nearest to ANY of their latest ``n_recent`` distinct items (the highest cosine to one of
them), ``match="profile"`` ranks by the cosine to those items' mean text vector, the order of
:class:`~.models.text_only.TextOnly`; ties by popularity, then index. Optionally only items whose
cosine is at least ``min_cosine`` (near-duplicates of what the customer buys: "same product, new
pack").

Why nearest, not the mean: a mean of ten products' vectors points between them, at none; a cold
item the customer buys is most often a variant or neighbour of ONE thing they bought. Measured on
the held-out last orders of completejourney-sample and MovieLens-small and on the two orders
before each (six target sets; 3 slots, cold = fewer than 5 training events), the nearest-of-ten
picks hit 23 cold targets against 9 for the mean of twenty, more on every one of the six sets
(``bench/cold_match.py``; docs/recommendations.md, *Which text match fills the slots*).

The stage rewrites SCORES, not lists, so every path that ranks (evaluation, batch scoring, export,
the session endpoint, campaigns through stored lists) serves the same list: a chosen cold item gets
a score strictly between the ``list_k - slots``-th and the next best other unbought item, in text
order. Everything else keeps the base model's score. An item excluded later (out of stock,
rejected) just lets the next item move up.

Its parameters are chosen on VALIDATION per dataset (:func:`choose_cold_slots`): among a small
grid, the largest intervention (most cold items served per list) whose NDCG@10 drop against no
intervention is within ``max_drop_se`` standard errors of the list's own NDCG@10 (clustered by
customer) AND that hits more cold validation targets than no intervention; none qualifies -> 0
slots (the stage is off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from .models.base import recent_distinct
from .models.text_only import normalise, text_profiles

# The grid :func:`choose_cold_slots` tries: slot counts x minimum cosine (None = no threshold).
SLOT_GRID = (1, 2, 3, 4, 5)
COSINE_GRID: tuple[float | None, ...] = (None, 0.9)
MAX_DROP_SE = 1.0


@dataclass(frozen=True)
class ColdSlotsConfig:
    slots: int = 0  # places of the top list_k given to cold items (0 = off)
    min_cosine: float | None = None  # a cold item needs at least this cosine (by ``match``) to the history
    list_k: int = 10  # the cold slots are the last ``slots`` places of the top list_k
    n_recent: int = 10  # latest distinct items the cold items are matched against
    cold_threshold: int = 5  # fewer training events than this = cold
    match: str = "nearest"  # "nearest": best cosine to one of them; "profile": cosine to their mean


MATCHES = ("nearest", "profile")
# What a stage saved before ``match`` existed did: it keeps serving the same list after an upgrade.
SAVED_BEFORE_MATCH = {"match": "profile"}
NEAREST_CHUNK = 256  # rows per block when matching to the nearest item: bounds [distinct items, n_cold]


class ColdSlots:
    """The stage: normalised text vectors (float32, exactly the text-only baseline's), popularity (ties) and
    the cold mask of the data it was fit on, plus its :class:`ColdSlotsConfig`."""

    def __init__(self, config: ColdSlotsConfig, text: np.ndarray, item_pop: np.ndarray) -> None:
        if config.slots < 0 or config.slots >= config.list_k:
            raise ValueError(f"cold slots must be in [0, {config.list_k}), not {config.slots}.")
        if config.match not in MATCHES:
            raise ValueError(f"cold slots match must be one of {', '.join(MATCHES)}, not {config.match!r}.")
        self.config = config
        self.text = np.asarray(normalise(text), np.float32)
        self.item_pop = np.asarray(item_pop, np.float32)
        self.cold = self.item_pop < config.cold_threshold

    def with_config(self, config: ColdSlotsConfig) -> ColdSlots:
        out = ColdSlots.__new__(ColdSlots)
        out.config, out.text, out.item_pop = config, self.text, self.item_pop
        out.cold = self.item_pop < config.cold_threshold
        return out

    def with_counts(self, counts: np.ndarray) -> ColdSlots:
        """The same stage with popularity and cold mask from fresher data (e.g. train+valid)."""
        out = self.with_config(self.config)
        out.item_pop = np.asarray(counts, np.float32)
        out.cold = out.item_pop < self.config.cold_threshold
        return out

    @property
    def active(self) -> bool:
        return self.config.slots > 0 and bool(self.cold.any()) and not bool(self.cold.all())

    # ---------------------------------------------------------------- choosing
    def choose(self, histories: list[np.ndarray], seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the cold items for the slots, in text order: (items int64 [n, slots], cosine
        float32 [n, slots]); -1 / -inf where fewer qualify (no profile, threshold, all bought)."""
        cfg = self.config
        n, s = len(histories), cfg.slots
        items = np.full((n, s), -1, np.int64)
        cos_out = np.full((n, s), -np.inf, np.float32)
        cold_idx = np.flatnonzero(self.cold)
        if not s or not len(cold_idx) or not n:
            return items, cos_out
        cos, has_profile = self.cold_cosine(histories, cold_idx)  # [n, n_cold], [n]
        seen_cold = seen[:, cold_idx].tocoo()
        cos[seen_cold.row, seen_cold.col] = -np.inf
        if cfg.min_cosine is not None:
            cos[cos < cfg.min_cosine] = -np.inf
        cos[~has_profile] = -np.inf
        take = min(s, len(cold_idx))
        kth = -np.partition(-cos, take - 1, axis=1)[:, take - 1]  # the take-th largest cosine
        pop = self.item_pop[cold_idx]
        for r in range(n):
            if not np.isfinite(kth[r]):
                finite = np.flatnonzero(np.isfinite(cos[r]))
            else:
                finite = np.flatnonzero(cos[r] >= kth[r])  # every tie at the cut: ordered below
            if not len(finite):
                continue
            # text-only order: cosine desc, then popularity desc, then index asc
            order = np.lexsort((cold_idx[finite], -pop[finite], -cos[r, finite]))[:take]
            items[r, : len(order)] = cold_idx[finite[order]]
            cos_out[r, : len(order)] = cos[r, finite[order]]
        return items, cos_out

    def cold_cosine(self, histories: list[np.ndarray], cold_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosine float32 [n, len(cold_idx)] of each row's history to each cold item, by
        ``config.match``; whether the row has a history at all, bool [n])."""
        cfg = self.config
        cold_text = self.text[cold_idx]
        if cfg.match == "profile":
            profiles = text_profiles(histories, self.text, cfg.n_recent)
            return profiles @ cold_text.T, np.abs(profiles).sum(1) > 0
        recent = [recent_distinct(h, cfg.n_recent) for h in histories]
        has = np.fromiter((len(h) > 0 for h in recent), bool, len(recent))
        cos = np.full((len(recent), len(cold_idx)), -np.inf, np.float32)
        for lo in range(0, len(recent), NEAREST_CHUNK):
            block = recent[lo : lo + NEAREST_CHUNK]
            lengths = np.fromiter((len(h) for h in block), np.int64, len(block))
            if not lengths.sum():
                continue
            distinct, position = np.unique(np.concatenate(block), return_inverse=True)
            sims = np.vstack([self.text[distinct] @ cold_text.T,  # one row per distinct item ...
                              np.full((1, len(cold_idx)), -np.inf, np.float32)])  # ... + padding
            slots = np.full((len(block), int(lengths.max())), len(distinct), np.int64)
            rows = np.repeat(np.arange(len(block)), lengths)
            slots[rows, np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = position
            out = cos[lo : lo + len(block)]
            for j in range(slots.shape[1]):
                np.maximum(out, sims[slots[:, j]], out=out)
        return cos, has

    def choose_and_apply(self, scores: np.ndarray, histories: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` (a history's items are never served) and the items it chose, int64
        [n, slots] (-1 = none): for a caller that needs both (batch scoring stores the picks' reasons),
        so the choice, the costly part, is made once per block."""
        seen = history_matrix(histories, np.shape(scores)[1])
        chosen = self.choose(histories, seen)[0]
        return self.apply(scores, histories, seen, chosen=chosen), chosen

    def apply(self, scores: np.ndarray, histories: list[np.ndarray], seen: sp.csr_matrix | None = None,
              chosen: np.ndarray | None = None) -> np.ndarray:
        """``scores`` [n, n_items] with the chosen cold items moved into the slots (a copy).

        ``histories``: each row's items, oldest first (the profile); ``seen``: the items the row
        must never be served (default: the history's items); ``chosen``: :meth:`choose`'s items
        when the caller already has them."""
        if not self.active:
            return scores
        cfg = self.config
        scores = np.array(scores, dtype=np.float32, copy=True)
        n, m = scores.shape
        if seen is None:
            seen = history_matrix(histories, m)
        if chosen is None:
            chosen, _ = self.choose(histories, seen)
        if not (chosen >= 0).any():
            return scores
        place = cfg.list_k - cfg.slots  # other items above the slots
        masked = scores.copy()
        seen_coo = seen.tocoo()
        masked[seen_coo.row, seen_coo.col] = -np.inf
        rows_c, cols_c = np.nonzero(chosen >= 0)
        masked[rows_c, chosen[rows_c, cols_c]] = -np.inf
        kk = min(place + 1, m)
        top = -np.partition(-masked, kk - 1, axis=1)[:, :kk]
        top.sort(axis=1)
        top = top[:, ::-1]  # descending: [0] best ... [place - 1] = hi, [place] = lo
        for r in np.unique(rows_c):
            picks = chosen[r][chosen[r] >= 0]
            hi, lo = _gap(top[r], place, masked[r])
            values = hi - (np.arange(1, len(picks) + 1) / (len(picks) + 1)) * (hi - lo)
            values = values.astype(np.float32)
            prev = np.float32(hi)
            for j in range(len(values)):  # strictly below hi and the previous pick: no ties
                values[j] = min(values[j], np.nextafter(prev, np.float32(-np.inf)))
                prev = values[j]
            scores[r, picks] = np.maximum(scores[r, picks], values)
        return scores

    # ------------------------------------------------------------- persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"cold_slots_text": self.text, "cold_slots_pop": self.item_pop}

    def to_json(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_saved(cls, config: dict, arrays: dict[str, np.ndarray]) -> ColdSlots:
        stage = cls.__new__(cls)
        stage.config = ColdSlotsConfig(**{**SAVED_BEFORE_MATCH, **config})
        stage.text = np.asarray(arrays["cold_slots_text"], np.float32)
        stage.item_pop = np.asarray(arrays["cold_slots_pop"], np.float32)
        stage.cold = stage.item_pop < stage.config.cold_threshold
        return stage


def _gap(top: np.ndarray, place: int, row: np.ndarray) -> tuple[float, float]:
    """(hi, lo): the cold items go strictly between these scores. ``top``: the row's best
    ``place + 1`` other scores, descending. Normally hi = the ``place``-th, lo = the next one. When
    those two tie, which of the tied items is above the slots is not the score's to say (the
    server breaks ties by index), so the cold items go just ABOVE the tie instead: between it and
    the next higher score (they then sit a place or two higher, never outside the top list_k)."""
    finite = top[np.isfinite(top)]
    if len(finite) < place:  # fewer other items than places above the slots: after all of them
        floor = float(row[np.isfinite(row)].min()) if np.isfinite(row).any() else 0.0
        return floor, floor - 1.0
    hi = float(top[place - 1])
    lo = float(top[place]) if len(top) > place and np.isfinite(top[place]) else hi - 1.0
    if lo < hi:
        return hi, lo
    higher = finite[finite > hi]
    return (float(higher.min()) if len(higher) else hi + 1.0), hi


def history_matrix(histories: list, n_items: int) -> sp.csr_matrix:
    """[len(histories), n_items] 0/1 CSR of the items in each history (what a row has seen)."""
    lengths = np.fromiter((len(h) for h in histories), np.int64, len(histories))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = (np.concatenate([np.asarray(h, np.int64) for h in histories]) if lengths.sum()
               else np.zeros(0, np.int64))
    m = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(histories), n_items))
    m.sum_duplicates()
    return m


def grid(slots: tuple[int, ...] = SLOT_GRID, cosines: tuple[float | None, ...] = COSINE_GRID,
         **base: int | str) -> list[ColdSlotsConfig]:
    """The candidate configurations, no intervention first."""
    return [ColdSlotsConfig(slots=0, **base)] + [ColdSlotsConfig(slots=s, min_cosine=c, **base)
                                                 for s in slots for c in cosines]


# ----------------------------------------------------------------------------- choosing on validation
BASE_TOP = 50  # base-list places kept per customer while the grid is evaluated (>= list_k + slots)


class TopScores:
    """A scorer that answers from each customer's cached base top list (everything else -inf):
    exact for metrics @list_k because the stage only ever moves items INTO the top list_k."""

    def __init__(self, n_items: int, users: np.ndarray, items: np.ndarray, scores: np.ndarray) -> None:
        self.n_items = n_items
        self.users = np.asarray(users, np.int64)
        self.row_of = {int(u): r for r, u in enumerate(users)}
        self.items, self.scores = items, scores

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.atleast_1d(user_idx)
        out = np.full((len(user_idx), self.n_items), -np.inf, np.float32)
        for r, u in enumerate(user_idx):
            row = self.row_of.get(int(u))
            if row is not None:
                ok = self.items[row] >= 0
                out[r, self.items[row][ok]] = self.scores[row][ok]
        return out


def base_top(model, users: np.ndarray, seen: sp.csr_matrix, k: int = BASE_TOP, batch: int = 512) -> TopScores:
    """``model``'s own scores (no stage) for ``users``: their top ``k`` unbought items, cached."""
    from .models.base import top_k

    users = np.unique(np.asarray(users, np.int64))
    items = np.full((len(users), k), -1, np.int64)
    values = np.full((len(users), k), -np.inf, np.float32)
    for lo in range(0, len(users), batch):
        chunk = users[lo : lo + batch]
        s = np.array(model.score(chunk), dtype=np.float32, copy=True)
        coo = seen[chunk].tocoo()
        s[coo.row, coo.col] = -np.inf
        it, sc = top_k(s, k)
        items[lo : lo + len(chunk), : it.shape[1]] = np.where(np.isfinite(sc), it, -1)
        values[lo : lo + len(chunk), : sc.shape[1]] = sc
    return TopScores(model.n_items, users, items, values)


class _SharedPicks:
    """The grid's cold picks, chosen once per batch of customers for every configuration.

    Why: :meth:`ColdSlots.choose` is most of the grid's cost (16 of 31 s on completejourney), and
    the configurations differ only in how many slots and which minimum cosine: a configuration's
    picks are the first ``slots`` of the widest configuration's (the text order is a total order),
    less those below its ``min_cosine`` (they come last in that order, so the rest stay a prefix).
    Configurations that match otherwise or read another cold mask (``n_recent``, ``match``,
    ``cold_threshold``) are chosen apart."""

    def __init__(self, configs: list[ColdSlotsConfig]) -> None:
        self.widest: dict[tuple[int, int, str], int] = {}
        for cfg in configs:
            key = (cfg.n_recent, cfg.cold_threshold, cfg.match)
            self.widest[key] = max(self.widest.get(key, 0), cfg.slots)
        self.cache: dict[tuple[int, int, str, bytes], tuple[np.ndarray, np.ndarray]] = {}

    def chosen(self, stage: ColdSlots, user_idx: np.ndarray, histories: list, seen: sp.csr_matrix) -> np.ndarray:
        """``stage.choose(histories, seen)[0]`` for the customers ``user_idx``."""
        cfg = stage.config
        key = (cfg.n_recent, cfg.cold_threshold, cfg.match, np.asarray(user_idx, np.int64).tobytes())
        if key not in self.cache:
            wide = ColdSlotsConfig(slots=self.widest[key[:3]], min_cosine=None, list_k=cfg.list_k,
                                   n_recent=cfg.n_recent, cold_threshold=cfg.cold_threshold, match=cfg.match)
            self.cache[key] = stage.with_config(wide).choose(histories, seen)
        items, cos = self.cache[key]
        items = items[:, : cfg.slots].copy()
        if cfg.min_cosine is not None:
            items[~(cos[:, : cfg.slots] >= cfg.min_cosine)] = -1
        return items


class _Staged:
    """``TopScores`` with a stage applied, as ``evaluate_ranks`` sees a model; ``picks`` shares the
    choice between the grid's configurations."""

    def __init__(self, top: TopScores, stage: ColdSlots, histories: list, seen: sp.csr_matrix,
                 picks: _SharedPicks | None = None) -> None:
        self.top, self.stage, self.histories, self.seen = top, stage, histories, seen
        self.picks = picks
        self.served = 0  # cold items put in a slot, over all rows scored

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        user_idx = np.atleast_1d(user_idx)
        hist, seen = [self.histories[u] for u in user_idx], self.seen[user_idx]
        if not self.stage.active:
            return self.top.score(user_idx)
        if self.picks is None:
            chosen = self.stage.choose(hist, seen)[0]
        else:
            chosen = self.picks.chosen(self.stage, user_idx, hist, seen)
        self.served += int((chosen >= 0).sum())
        return self.stage.apply(self.top.score(user_idx), hist, seen, chosen=chosen)


def choose_cold_slots(
    model, train, targets: np.ndarray, text: np.ndarray, *, configs: list[ColdSlotsConfig] | None = None,
    max_drop_se: float = MAX_DROP_SE, top: TopScores | None = None,
) -> tuple[ColdSlots, dict]:
    """The stage for ``model`` chosen on the validation ``targets`` (histories = ``train``).

    Rule: among ``configs`` (default :func:`grid`), the one that serves the most cold items per
    list whose validation NDCG@list_k is at most ``max_drop_se`` standard errors of the model's own
    validation NDCG@list_k (clustered by customer: the noise of the list's measurement) below it,
    and that hits MORE cold validation targets than no intervention (slots that never hit anything
    are pure cost). None qualifies -> 0 slots. The paired difference and its SE are reported too:
    a slot that displaces a warm item costs a small, consistent amount, so a paired-SE budget would
    give cold items no room wherever they are rarely bought, which is exactly where the issue asks
    for them. Returns the stage (fit on ``train``'s counts) and a JSON report of every
    configuration's validation numbers."""
    from .metrics import evaluate_ranks, standard_error

    configs = configs or grid()
    targets = np.asarray(targets, np.int64).reshape(-1, 2)
    counts = train.item_counts()
    off = ColdSlots(ColdSlotsConfig(slots=0), text, counts)
    if not len(targets):
        return off, {"chosen": off.to_json(), "reason": "no validation targets"}
    seen = train.csr(binary=True)
    histories = train.sequences()
    top = top or base_top(model, targets[:, 0], seen)
    k = configs[0].list_k
    n_lists = len(np.unique(targets[:, 0]))
    rows = []
    picks = _SharedPicks(configs)  # one choice per batch of customers for the whole grid
    for cfg in configs:
        staged = _Staged(top, off.with_config(cfg), histories, seen, picks)
        m, ranks = evaluate_ranks(staged, train, targets, k=k, cold_threshold=cfg.cold_threshold,
                                  with_coverage=False)
        gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
        cold = counts[targets[:, 1]] < cfg.cold_threshold
        rows.append({"config": cfg, "gains": gains, "ndcg": m[f"ndcg@{k}"], "ndcg_se": m[f"ndcg@{k}_se"],
                     "cold_hits": int((ranks[cold] < k).sum()), "served_per_list": staged.served / n_lists})
    base = rows[0]
    chosen = base
    budget = max_drop_se * base["ndcg_se"]
    for row in rows[1:]:
        diff = row["gains"] - base["gains"]
        row["diff"], row["diff_se"] = float(diff.mean()), standard_error(diff, targets[:, 0])
        row["ok"] = bool(diff.mean() >= -budget and row["cold_hits"] > base["cold_hits"])
        if row["ok"] and (row["served_per_list"], row["ndcg"]) > (chosen["served_per_list"], chosen["ndcg"]):
            chosen = row
    report = {
        "chosen": asdict(chosen["config"]), "budget": budget,
        "rule": f"most cold items served per list with a validation NDCG@{k} drop <= {max_drop_se} SE of the "
        "list's own NDCG@10 and more cold validation hits than without",
        "valid": [{**asdict(r["config"]), **{key: r[key] for key in
                   ("ndcg", "ndcg_se", "cold_hits", "served_per_list", "diff", "diff_se", "ok") if key in r}}
                  for r in rows],
    }
    return ColdSlots(chosen["config"], text, counts), report
