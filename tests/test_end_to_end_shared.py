"""`shortlist evaluate` with the default model on every real dataset in ../shared/data, under each
protocol the dataset supports (skipped when the folder is absent)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

RUNS = [
    ("ml-100k", "ml-100k", ["llo", "days:14", "quantile:0.9"]),
    ("online-retail", "online-retail", ["days:14", "llo", "quantile:0.95"]),
    ("amazon-gift-cards", "amazon18-gift-cards", ["llo", "days:60", "quantile:0.9"]),
    ("amazon-magazine-subs", "amazon18-magazine-subs", ["llo", "days:60", "quantile:0.9"]),
    ("ml-1m", "ml-1m-partial", ["random:0.2"]),  # no timestamps: only a random holdout
]


def _needs(folder: str) -> None:
    if not (SHARED_DATA / folder).is_dir():
        pytest.skip(f"shared data {folder!r} not available at {SHARED_DATA}")


def _two_stage_ndcg(stdout: str) -> float:
    """NDCG@10 of the two_stage row of the printed results table."""
    lines = stdout.splitlines()
    header = next(line for line in lines if "ndcg@10" in line)
    columns = [c.strip() for c in header.strip("│┃ ").replace("┃", "│").split("│")]
    row = next(line for line in lines if line.strip("│ ").startswith("two_stage"))
    values = [c.strip() for c in row.strip("│ ").split("│")]
    return float(values[columns.index("ndcg@10")])


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "folder", "protocol"),
                         [(d, f, p) for d, f, protocols in RUNS for p in protocols])
def test_evaluate_every_dataset_under_each_protocol(cli, dataset, folder, protocol):
    _needs(folder)
    code, out, err = cli(["evaluate", "--dataset", dataset, "--data-dir", str(SHARED_DATA), "--protocol", protocol])
    assert code == 0, err
    ndcg = _two_stage_ndcg(out)
    assert math.isfinite(ndcg) and 0.0 <= ndcg <= 1.0


@pytest.mark.shared
@pytest.mark.parametrize("protocol", ["llo", "llo:2", "days:14", "quantile:0.9"])
def test_time_protocols_on_a_log_without_times_are_a_clear_error(cli, protocol):
    _needs("ml-1m-partial")
    code, _, err = cli(["evaluate", "--dataset", "ml-1m", "--data-dir", str(SHARED_DATA), "--protocol", protocol])
    assert code == 2 and "random:" in err and "no time" in err.replace("\n", " ")
