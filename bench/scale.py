"""Scale: score and store every customer's top-50 into PostgreSQL, next to the machine's own floors.

Run:  python bench/scale.py [--customers 1000000] [--items 10000] [--dim 64] [--k 50]
      (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/scale_bench; created if missing)

1. Creates ``--customers`` customers and ``--items`` items with set-based SQL (not timed; reused
   when the counts already match), a random float32 item table ``[items, dim]`` and ``--history``
   random items per customer, packed into int32 CSR arrays.
2. The pipeline (timed): ``engine.batch_scoring.score_batches`` with an item-pooling factor scorer
   (user vector = mean of the history's item vectors; ``b_i + <q_u, p_i>``), history items excluded,
   top-``k`` on the device, each batch encoded to binary COPY and streamed by the writer thread into
   the version's own table while the next batch is scored; then the version table's unique index
   (``version_storage_index``) and ``ATTACH PARTITION`` (adopts it, validates foreign keys), timed
   apart. Reports wall time, rows/s, customers/s and peak RSS.
3. The floors, measured in the same run (after the pipeline) on a sample: a bare float32 ``[batch, dim] @ [dim, items]``
   matmul (the compute floor), the scorer alone (matmul + masking + top-k, no database) and a bare
   binary COPY of the same rows into a plain table (the write floor). Compute rates per wall and
   per CPU second (on a loaded machine the wall clock mostly measures waiting for a core).
Writes ``bench/results/scale-<customers>.json``. Stored reasons are empty here (the product's reason
text is per customer and measured by the ``score`` command, not by this script).

``--no-store`` (no Django, no database: runs where only PyTorch is, e.g. a lent GPU machine) times the
same ``score_batches`` pipeline on the resolved device (CUDA when present) for each ``--batch-sizes``
and each ``--precisions`` (``auto``: the product's, bf16 autocast on CUDA / float32 on CPU; ``fp32``
and ``tf32``: float32 scores, on CUDA without and with TF32 tensor cores), with the customers' top-k
copied back to host memory as the writer would get them; next to the bare same-shape matmul on the
device and, on CUDA, a large bf16 GEMM (8192³), the device's own matmul rate. Writes
``bench/results/scale-compute-<device>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from drill_common import ensure_database  # noqa: E402  (bench/ helpers)

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/scale_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def catalogue(n_customers: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Customer and item ids (created with generate_series when the counts differ)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM crm_customer")
        n_c = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM crm_item")
        n_i = cur.fetchone()[0]
        if (n_c, n_i) != (n_customers, n_items):
            cur.execute("TRUNCATE recommendations_recommendation, recommendations_modelversion, crm_interaction, "
                        "crm_feedback, crm_item, crm_customer RESTART IDENTITY CASCADE")
            cur.execute(
                """INSERT INTO crm_customer (external_id, email, first_name, last_name, country, attributes,
                       email_opt_in, created_at, updated_at)
                   SELECT 'c' || g, 'c' || g || '@example.com', '', '', 'DE', '{}'::jsonb, true, now(), now()
                   FROM generate_series(1, %s) g""", [n_customers])
            cur.execute(
                """INSERT INTO crm_item (sku, title, description, category, tags, price, currency, url, image_url,
                       active, in_stock, attributes, created_at, updated_at)
                   SELECT 'SKU' || g, 'Product ' || g, '', 'cat' || (g %% 20), '[]'::jsonb, 5, 'EUR', '', '',
                          true, true, '{}'::jsonb, now(), now()
                   FROM generate_series(1, %s) g""", [n_items])
            cur.execute("ANALYZE crm_customer; ANALYZE crm_item")
        cur.execute("SELECT id FROM crm_customer ORDER BY id")
        customers = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
        cur.execute("SELECT id FROM crm_item ORDER BY id")
        items = np.array([r[0] for r in cur.fetchall()], dtype=np.int64)
    return customers, items


def _block(scored, customer_ids, item_ids, k):
    from recommendations.services.bulk_write import RecommendationBlock

    top_items, top_scores = scored.items, scored.scores
    return RecommendationBlock.from_top_k(
        "discover", customer_ids[scored.rows], item_ids[top_items], top_scores,
        probabilities=1.0 / (1.0 + np.exp(-np.clip(top_scores, -30, 30))),
    )


def _rate(fn, customers: int) -> tuple[float, float]:
    """(customers per wall second, customers per CPU second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return customers / (time.perf_counter() - wall), customers / max(1e-9, time.process_time() - cpu)


def floors(scorer, packed, customer_ids, item_ids, k: int, batch: int, sample: int) -> dict:
    """Bare matmul, scorer alone, and bare COPY on ``sample`` customers.

    Rates are per wall second and per CPU second of this process: on a shared, loaded machine the
    wall clock mostly measures waiting for a core, CPU seconds what the work costs. The matmul is
    timed at ``batch`` rows (the same shape as the scorer's batches) and at the scorer's CPU chunk
    (``CPU_CHUNK_ELEMENTS / items`` rows, the block that stays in cache): the faster is the floor.
    """
    from django.db import connection, transaction

    from recommendations.engine.batch_scoring import CPU_CHUNK_ELEMENTS, score_batches
    from recommendations.services.bulk_write import COPY_COLUMNS, COPY_HEADER, COPY_TRAILER, encode_copy_binary

    n = min(sample, len(packed))
    n_items, dim = scorer.p.shape
    matmul = {}
    for rows in sorted({batch, max(1, CPU_CHUNK_ELEMENTS // n_items)}):
        q = torch.randn(rows, dim)
        reps = max(1, n // rows)
        out = torch.empty(rows, n_items)

        def products() -> None:
            for _ in range(reps):  # noqa: B023
                torch.mm(q, scorer.p.T, out=out)  # noqa: B023

        def fresh() -> None:  # a new output block per product, as the previous floor did
            for _ in range(reps):  # noqa: B023
                torch.mm(q, scorer.p.T)  # noqa: B023

        with torch.inference_mode():
            torch.mm(q, scorer.p.T, out=out)
            matmul[rows] = _rate(products, reps * rows)
            if rows == batch:
                matmul_fresh = _rate(fresh, reps * rows)
    blocks = []

    def score() -> None:
        for scored in score_batches(scorer, packed, k, exclude=packed, rows=range(n), batch_size=batch):
            blocks.append(_block(scored, customer_ids, item_ids, k))

    scorer_wall, scorer_cpu = _rate(score, n)
    best_rows = max(matmul, key=lambda r: matmul[r][1])
    payload = [encode_copy_binary(0, b) for b in blocks]
    rows = sum(len(b) for b in blocks)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE copy_floor (LIKE recommendations_recommendation INCLUDING DEFAULTS) "
                    "ON COMMIT DROP")
        started = time.perf_counter()
        with cur.cursor.copy(f"COPY copy_floor ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for data in payload:
                copy.write(data)
            copy.write(COPY_TRAILER)
        copy_seconds = time.perf_counter() - started
    return {
        "sample_customers": n,
        # as in earlier runs: ``torch.mm`` into a fresh [batch, items] block each time
        "matmul_customers_per_s": round(matmul_fresh[0]),
        "matmul_gflops": round(2 * matmul_fresh[0] * n_items * dim / 1e9, 1),
        "scorer_customers_per_s": round(scorer_wall),
        "scorer_vs_matmul": round(scorer_wall / matmul_fresh[0], 3),
        "cpu_seconds": {
            "matmul_fresh_block_customers_per_cpu_s": round(matmul_fresh[1]),
            # the GEMM alone: ``torch.mm(..., out=buffer)``, at the batch and at the in-cache chunk
            "matmul_customers_per_cpu_s": {str(r): round(v[1]) for r, v in matmul.items()},
            "matmul_best_rows": best_rows,
            "matmul_best_gflops": round(2 * matmul[best_rows][1] * n_items * dim / 1e9, 1),
            "scorer_customers_per_cpu_s": round(scorer_cpu),
            "scorer_vs_matmul_fresh_block": round(scorer_cpu / matmul_fresh[1], 3),
            "scorer_vs_best_matmul": round(scorer_cpu / matmul[best_rows][1], 3),
        },
        "copy_rows_per_s": round(rows / copy_seconds),
    }


class _PrecisionScorer:
    """The bench's view of ``FactorScorer`` at a chosen precision (``auto`` = the product's own)."""

    def __init__(self, scorer, precision: str) -> None:
        self.scorer, self.precision = scorer, precision
        self.device, self.n_items, self.p = scorer.device, scorer.n_items, scorer.p

    def block(self, histories, out=None):
        if self.precision == "auto":
            return self.scorer.block(histories, out=out)
        q = self.scorer.user_vectors(histories)
        return torch.cat([q, q.new_ones(len(q), 1)], dim=1) @ self.scorer._pb_t  # float32, no autocast


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _device_gemm_tflops(device: torch.device) -> float | None:
    """The device's own dense bf16 matmul rate (8192³, mean of 10 after 3 warm-ups); None on CPU."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(10):
        a @ b
    _sync(device)
    return 10 * 2 * 8192**3 / (time.perf_counter() - started) / 1e12


def compute_only(args) -> dict:
    """``--no-store``: the scoring pipeline alone on the resolved device, per batch size and precision."""
    from recommendations.engine.batch_scoring import FactorScorer, PackedHistories, score_batches
    from recommendations.engine.device import autocast_context

    rng = np.random.default_rng(0)
    n = args.customers
    p = rng.normal(0, 1 / np.sqrt(args.dim), (args.items, args.dim)).astype(np.float32)
    bias = rng.normal(0, 0.1, args.items).astype(np.float32)
    packed = PackedHistories(np.arange(n + 1, dtype=np.int64) * args.history,
                             rng.integers(0, args.items, n * args.history, dtype=np.int32))
    base = FactorScorer(p, bias, device="auto")
    device = base.device
    flops_per_customer = 2 * (args.dim + 1) * args.items
    runs = []
    for precision in args.precisions:
        if precision != "auto" and device.type != "cuda":
            continue
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        scorer = _PrecisionScorer(base, precision)
        for batch in args.batch_sizes:
            run = {"precision": precision, "batch_size": batch}
            try:
                for _ in score_batches(scorer, packed, args.k, exclude=packed, rows=range(min(n, 2 * batch)),
                                       batch_size=batch):
                    pass  # warm-up: kernels, allocator
                _sync(device)
                started, done = time.perf_counter(), 0
                for scored in score_batches(scorer, packed, args.k, exclude=packed, batch_size=batch):
                    done += len(scored.rows)
                    if time.perf_counter() - started > args.max_seconds_per_run:
                        run["partial"] = True  # too slow to finish: the rate is over what ran
                        break
                seconds = time.perf_counter() - started
                run.update(customers=done, seconds=round(seconds, 3), customers_per_s=round(done / seconds),
                           useful_tflops=round(done * flops_per_customer / seconds / 1e12, 3))
                # the floor: the bare product of the same shape, repeated as often, on the device
                q1 = torch.randn(batch, args.dim + 1, device=device)
                reps = max(1, done // batch)
                ctx = autocast_context(device) if precision == "auto" else contextlib.nullcontext()
                with torch.inference_mode(), ctx:
                    q1 @ base._pb_t
                    _sync(device)
                    t = time.perf_counter()
                    for _ in range(reps):
                        q1 @ base._pb_t
                    _sync(device)
                run["matmul_customers_per_s"] = round(reps * batch / (time.perf_counter() - t))
                run["vs_same_shape_matmul"] = round(run["customers_per_s"] / run["matmul_customers_per_s"], 3)
            except torch.OutOfMemoryError as exc:
                run["error"] = f"out of memory: {str(exc).splitlines()[0]}"
            if device.type == "cuda":
                run["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.empty_cache()
            print(json.dumps(run), flush=True)
            runs.append(run)
    torch.backends.cuda.matmul.allow_tf32 = False
    gemm = _device_gemm_tflops(device)
    best = max((r for r in runs if "customers_per_s" in r), key=lambda r: r["customers_per_s"], default=None)
    return {
        "customers": n, "items": args.items, "dim": args.dim, "k": args.k, "history": args.history,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "runs": runs, "best": best,
        "device_bf16_gemm_tflops_8192": round(gemm, 1) if gemm else None,
        "best_fraction_of_device_gemm_rate": round(best["useful_tflops"] / gemm, 5) if best and gemm else None,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "torch": torch.__version__},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--floor-sample", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (0 = torch's default); 1 = the CPU scoring set-up (one process per "
                             "core: cache-sized chunks, grouped top-k, PostgreSQL's COPY on the other core)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--no-store", action="store_true",
                        help="score only (no Django, no database), per --batch-sizes and --precisions")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--precisions", nargs="+", default=["auto"], choices=["auto", "fp32", "tf32"])
    parser.add_argument("--max-seconds-per-run", type=float, default=60.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.no_store:
        result = compute_only(args)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"scale-compute-{result['device'].split(':')[0]}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from recommendations.engine.batch_scoring import FactorScorer, PackedHistories, score_batches
    from recommendations.models import ModelVersion
    from recommendations.services.bulk_write import RecommendationWriter
    from recommendations.services.partitions import (
        partitioned,
        version_attached,
        version_storage_attach,
        version_storage_index,
        version_table,
    )

    started = time.perf_counter()
    customer_ids, item_ids = catalogue(args.customers, args.items)
    setup_seconds = time.perf_counter() - started
    rng = np.random.default_rng(0)
    p = rng.normal(0, 1 / np.sqrt(args.dim), (args.items, args.dim)).astype(np.float32)
    bias = rng.normal(0, 0.1, args.items).astype(np.float32)
    n = len(customer_ids)
    packed = PackedHistories(np.arange(n + 1, dtype=np.int64) * args.history,
                             rng.integers(0, args.items, n * args.history, dtype=np.int32))
    scorer = FactorScorer(p, bias, device="auto")
    for old in ModelVersion.objects.filter(algorithm="bench-scale"):  # a previous run: drop, not DELETE
        if partitioned():
            with connection.cursor() as cur:
                if version_attached(old.pk):
                    cur.execute(f"ALTER TABLE recommendations_recommendation DETACH PARTITION {version_table(old.pk)}")
                cur.execute(f"DROP TABLE IF EXISTS {version_table(old.pk)}")
        old.delete()
    version = ModelVersion.objects.create(algorithm="bench-scale", status=ModelVersion.Status.SCORING,
                                          device=str(scorer.device))
    rss_before = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    compute = 0.0
    with RecommendationWriter(version.pk, int(customer_ids[0]), int(customer_ids[-1])) as writer:
        batches = score_batches(scorer, packed, args.k, exclude=packed, batch_size=args.batch_size)
        while True:
            t = time.perf_counter()
            scored = next(batches, None)
            if scored is None:
                break
            block = _block(scored, customer_ids, item_ids, args.k)
            compute += time.perf_counter() - t
            writer.put(block)
        rows = writer.rows
    written = time.perf_counter() - started
    cpu_written = time.process_time() - cpu_started
    version_storage_index(version.pk)
    indexed = time.perf_counter() - started
    version_storage_attach(version.pk)
    total = time.perf_counter() - started
    peak_rss = _rss_mb()  # the floors run after the pipeline: their sample blocks are not in this figure
    floor = floors(scorer, packed, customer_ids, item_ids, args.k, args.batch_size, args.floor_sample)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size(%s)", [f"recommendations_recommendation_v{version.pk}"])
        table_bytes = cur.fetchone()[0]
    result = {
        "customers": n, "items": args.items, "dim": args.dim, "k": args.k, "history": args.history,
        "batch_size": args.batch_size, "device": str(scorer.device), "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "score_and_copy_seconds": round(written, 1),
        "index_seconds": round(indexed - written, 1),
        "attach_seconds": round(total - indexed, 1),
        "total_seconds": round(total, 1),
        "rows_per_s": round(rows / total),
        "customers_per_s": round(n / total),
        "compute_seconds_in_pipeline": round(compute, 1),
        "process_cpu_seconds_score_and_copy": round(cpu_written, 1),
        "peak_rss_mb": round(peak_rss),
        "rss_before_pipeline_mb": round(rss_before),
        "table_mb": round(table_bytes / 2**20),
        "setup_seconds_not_timed": round(setup_seconds, 1),
        "floors": floor,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "torch": torch.__version__},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{n}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)


if __name__ == "__main__":
    main()
