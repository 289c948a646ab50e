"""The acceptance run's hold-out (bench/holdout_last.py): each customer's last order leaves the imported
file whole, nothing else does, and the held-out folder still imports in its own format."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from bench.holdout_last import last_orders

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _run(fmt: str, source: Path, out: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "holdout_last.py"), "--format", fmt,
                    "--source", str(source), "--out", str(out)], check=True, capture_output=True)


def test_canonical_last_order_is_held_out_whole(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    header = ["customer_id", "item_id", "kind", "timestamp", "quantity", "value"]
    lines = [
        ["a", "i1", "purchase", "2024-01-01T10:00:00Z", 1, ""],
        ["a", "i2", "purchase", "2024-01-01T10:00:00Z", 1, ""],
        ["a", "i3", "purchase", "2024-02-01T10:00:00Z", 1, ""],  # a's last order: two lines
        ["a", "i1", "purchase", "2024-02-01T10:00:00Z", 1, ""],
        ["b", "i2", "purchase", "2024-01-05T10:00:00Z", 1, ""],  # b has one order: kept
    ]
    _write(src / "interactions.csv", header, lines)
    _write(src / "items.csv", ["item_id", "title"], [["i1", "One"], ["i2", "Two"], ["i3", "Three"]])
    out = tmp_path / "out"
    _run("canonical", src, out)
    kept = _rows(out / "interactions.csv")
    held = _rows(out / "heldout.csv")
    assert sorted((r["customer_id"], r["item_id"]) for r in held) == [("a", "i1"), ("a", "i3")]
    assert [(r["customer_id"], r["item_id"], r["timestamp"]) for r in kept] == [
        ("a", "i1", "2024-01-01T10:00:00Z"), ("a", "i2", "2024-01-01T10:00:00Z"), ("b", "i2", "2024-01-05T10:00:00Z")]
    assert list(kept[0]) == header  # same columns: the folder imports as it came
    assert (out / "items.csv").read_text() == (src / "items.csv").read_text()


def test_order_id_decides_the_order_when_given():
    rows = [
        {"customer_id": "a", "item_id": "x", "timestamp": "2024-01-01T10:00:00Z", "order_id": "o1"},
        {"customer_id": "a", "item_id": "y", "timestamp": "2024-01-01T10:05:00Z", "order_id": "o1"},
        {"customer_id": "a", "item_id": "z", "timestamp": "2024-01-01T10:01:00Z", "order_id": "o2"},
    ]
    # o1's latest line (10:05) is after o2's: o1 is the last order, though its first line is earlier
    assert last_orders(rows, "canonical") == {("a", "o1")}


def test_movielens_timestamps_compare_as_numbers(tmp_path):
    src = tmp_path / "ml"
    src.mkdir()
    _write(src / "ratings.csv", ["userId", "movieId", "rating", "timestamp"],
           [[1, 10, 4.0, 999], [1, 11, 3.0, 1000], [1, 12, 5.0, 1000], [2, 10, 2.0, 50]])
    _write(src / "movies.csv", ["movieId", "title", "genres"], [[10, "A", "Drama"], [11, "B", "Drama"]])
    _write(src / "tags.csv", ["userId", "movieId", "tag", "timestamp"], [])
    out = tmp_path / "out"
    _run("movielens", src, out)
    assert sorted((r["customer_id"], r["item_id"]) for r in _rows(out / "heldout.csv")) == [("1", "11"), ("1", "12")]
    assert [r["movieId"] for r in _rows(out / "ratings.csv")] == ["10", "10"]


@pytest.mark.parametrize("fmt", ["canonical", "movielens"])
def test_missing_events_file_fails_loudly(tmp_path, fmt):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "holdout_last.py"), "--format", fmt,
                           "--source", str(tmp_path), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not found: --source must be a" in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written
