"""Tiny data, a CLI runner, and (with the mlflow extra) a SQLite tracking store with one tracked fit."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from shortlist.cli import main
from shortlist.data.export import export_interactions
from shortlist.data.synthetic import make_synthetic


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str, str]:
    """``shortlist ARGV`` in this process: (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["shortlist", *argv]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        sys.argv = old
    if capsys is None:
        return code, "", ""
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="session")
def shortlist_cli() -> Callable[..., tuple[int, str, str]]:
    """:func:`run_cli` for fixtures wider than one test (no output capture)."""
    return run_cli


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[[list[str]], tuple[int, str, str]]:
    """``cli(argv)`` → (exit code, stdout, stderr) of ``shortlist ARGV`` run in this process."""
    return lambda argv: run_cli(argv, capsys)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.csv (150 users, 60 items) and users.csv (two known users, one unknown)."""
    d = tmp_path_factory.mktemp("tracking-data")
    ds = make_synthetic(n_users=150, n_items=60, n_interactions=3000, seed=4)
    export_interactions(ds.interactions).write_csv(d / "train.csv")
    pl.DataFrame({"user_id": ["u1", "u2", "never-seen"]}).write_csv(d / "users.csv")
    return d


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(a SQLite tracking URI, its folder); commands run in that folder, so artifacts land beside it."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    d = tmp_path_factory.mktemp("tracking-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHORTLIST_CACHE_DIR", str(d / "cache"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield f"sqlite:///{d / 'mlruns.db'}", d


@pytest.fixture(scope="session")
def tracked_fit(store: tuple[str, Path], files: Path) -> dict[str, object]:
    """One `shortlist fit --track --register shortlist --alias champion` into the store."""
    uri, folder = store
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code, _, _ = run_cli(["fit", "--interactions", str(files / "train.csv"), "--out", str(folder / "model"),
                              "--track", "--tracking-uri", uri, "--experiment", "tiny", "--register", "shortlist",
                              "--alias", "champion"])
    finally:
        os.chdir(cwd)
    assert code == 0
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("tiny")
    (run,) = client.search_runs([exp.experiment_id])
    return {"uri": uri, "client": client, "run": run, "model_dir": folder / "model", "folder": folder, "files": files}
