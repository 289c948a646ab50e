"""Prepare the folder that ``bench/device_run.sh`` needs on a GPU machine without network or Django.

Run:  python bench/device_prep.py [--datasets DIR] [--out .gpu]

Copies completejourney-sample and MovieLens-small (only the files ``bench/quality.py`` reads), embeds
every item text into ``<out>/cache/embeddings.npz`` here, where the bundled text model is installed,
and copies that model's ``config.json`` to ``<out>/model/``: ``quality.py --text-model <out>/model``
then finds every text in the cache (the cache key names the model by folder name and config hash) and
never needs the weights, which are too large to travel. About 50 MB in all; ``.gpu/`` is git-ignored:
name it in the device tool's ``carry``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import load_canonical, load_movielens  # noqa: E402

from recommendations.engine.text import (  # noqa: E402
    EmbeddingCache,
    TextEncoder,
    default_text_model_path,
    embed_with_cache,
)

FILES = {"completejourney-sample": ("interactions.csv", "items.csv"),
         "movielens-small": ("movies.csv", "ratings.csv", "tags.csv")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--out", default=str(ROOT / ".gpu"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out, source = Path(args.out), Path(args.datasets)
    for folder, names in FILES.items():
        (out / "datasets" / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(source / folder / name, out / "datasets" / folder / name)
    (out / "model").mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(default_text_model_path()) / "config.json", out / "model" / "config.json")
    encoder, cache = TextEncoder(), EmbeddingCache(out / "cache")
    for folder, load in (("movielens-small", load_movielens), ("completejourney-sample", load_canonical)):
        started = time.perf_counter()
        texts = load(out / "datasets" / folder)[2]
        for lo in range(0, len(texts), 2000):  # saved chunk by chunk: an interrupted run keeps its work
            embed_with_cache(encoder, texts[lo : lo + 2000], cache)
        print(f"{folder}: {len(texts)} item texts in the cache ({time.perf_counter() - started:.0f} s)", flush=True)
    assert TextEncoder(str(out / "model")).name == encoder.name  # the cache keys match on the other machine
    print(f"{out}: {sum(f.stat().st_size for f in out.rglob('*') if f.is_file()) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
