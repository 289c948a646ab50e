"""bench/cold_match.py: a pick hits a cold target only in that target's customer's row, and a
folder without a held-out file is refused before anything is measured."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.cold_match import cold_hits

ROOT = Path(__file__).resolve().parents[2]


def test_a_pick_hits_only_its_own_customers_target():
    picks = np.array([[4, 7, -1], [5, -1, -1]])
    rows = np.array([0, 0, 1, 1])
    targets = np.array([[10, 7], [10, 5], [11, 5], [11, -1]])  # (customer, item); -1 never matches a pick
    np.testing.assert_array_equal(cold_hits(picks, rows, targets), [1.0, 0.0, 1.0, 0.0])


def test_a_folder_without_heldout_orders_is_refused(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "cold_match.py"), "--data", f"canonical:{tmp_path}",
                          "--out", str(tmp_path / "out.json")], capture_output=True, text=True)
    assert run.returncode == 2
    assert "heldout.csv" in run.stderr and not (tmp_path / "out.json").exists()
