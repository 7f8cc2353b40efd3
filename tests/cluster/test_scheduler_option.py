"""--scheduler without a cluster: parsing, the missing extra, glob input. (The cluster runs: test_dask_cluster.py.)"""

from __future__ import annotations

import sys

import polars as pl
import pytest

from shortlist.data.loaders import InputNotFoundError
from shortlist.data.loaders.generic import load_dataset
from shortlist.distributed import SchedulerSpec, on_cluster, parse_scheduler
from shortlist.errors import ConfigError, DependencyMissingError


@pytest.mark.parametrize(("text", "spec"), [("local:3", SchedulerSpec(workers=3)),
                                            ("tcp://10.0.0.5:8786", SchedulerSpec(address="tcp://10.0.0.5:8786")),
                                            (" tls://sched.example:8786 ", SchedulerSpec(address="tls://sched.example:8786"))])
def test_scheduler_forms(text, spec):
    assert parse_scheduler(text) == spec


def test_local_means_one_worker_per_core():
    assert (parse_scheduler("local").workers or 0) >= 1


@pytest.mark.parametrize("text", ["local:0", "local:x", "spark://h:1", "tcp://host", "10.0.0.5:8786", ""])
def test_bad_scheduler_is_a_config_error_with_the_forms(text):
    with pytest.raises(ConfigError, match="local:N"):
        parse_scheduler(text)


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(DependencyMissingError, match=r"shortlist\[dask\]"), on_cluster("local:2"):
        pass


def test_cli_refuses_a_bad_scheduler_before_fitting(cli, tmp_path):
    pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [1, 2]}).write_csv(tmp_path / "i.csv")
    code, _, err = cli(["fit", "--interactions", str(tmp_path / "i.csv"), "--out", str(tmp_path / "m"),
                        "--scheduler", "yarn"])
    assert code != 0
    assert "local:N" in err
    assert not (tmp_path / "m").exists()


def test_interactions_from_a_glob_of_parquet_parts(tmp_path):
    frame = pl.DataFrame({"user_id": ["a", "b", "c", "a"], "item_id": ["x", "y", "x", "z"],
                          "timestamp": [1_600_000_000 + i for i in range(4)]})
    (tmp_path / "log").mkdir()
    frame[:2].write_parquet(tmp_path / "log" / "part-0.parquet")
    frame[2:].write_parquet(tmp_path / "log" / "part-1.parquet")
    by_glob = load_dataset(tmp_path / "log" / "part-*.parquet")
    by_folder = load_dataset(tmp_path / "log")
    assert len(by_glob.interactions) == len(by_folder.interactions) == 4
    assert by_glob.name == "log"
    with pytest.raises(InputNotFoundError, match="no file matches"):
        load_dataset(tmp_path / "log" / "nothing-*.parquet")
