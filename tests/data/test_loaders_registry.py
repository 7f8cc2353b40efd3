"""The dataset registry: lookup, search order, not-found / unknown errors, bundled fallback."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.loaders import DATASETS, find_dataset, get_spec, load_named, registry
from shortlist.errors import DatasetNotFoundError, UnknownDatasetError

Write = Callable[[str, "str | bytes"], Path]
U_DATA = "1\t10\t5\t881250949\n2\t10\t3\t881250950\n"


def test_registry_contents() -> None:
    assert set(DATASETS) == {
        "online-retail", "ml-100k", "ml-1m", "ml-latest-small", "amazon-gift-cards", "amazon-magazine-subs",
        "hm", "retailrocket",
    }  # fmt: skip
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.markers and spec.dir_names and spec.homepage
        assert spec.protocol == ("days:14" if spec.repeats else "llo")
        if name.startswith("ml-"):
            assert spec.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
            assert spec.sha256 is not None and re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
            assert not spec.user_supplied
        else:
            assert spec.url is None and spec.sha256 is None
    assert {n for n, s in DATASETS.items() if s.user_supplied} >= {"hm", "retailrocket"}
    assert DATASETS["online-retail"].bundled == "bundled/online_retail.parquet"


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'ml-100'.*Did you mean 'ml-100k'\?"):
        get_spec("ml-100")
    with pytest.raises(UnknownDatasetError):
        load_named("nope", search_dirs=[])


def test_not_found_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_named("ml-100k", search_dirs=[tmp_path])
    msg = str(err.value)
    assert str(tmp_path / "ml-100k") in msg and "shortlist download ml-100k" in msg and "--data-dir" in msg
    with pytest.raises(DatasetNotFoundError, match=r"kaggle\.com.*--data-dir DIR with DIR/hm/ holding"):
        load_named("hm", search_dirs=[tmp_path])


def test_search_order_and_folder_names(write: Write, tmp_path: Path) -> None:
    write("first/other/u.data", U_DATA)
    write("second/ml-100k/u.data", U_DATA)
    write("third/ml-100k/u.data", U_DATA + "3\t20\t4\t881250951\n")
    dirs = [tmp_path / "first", tmp_path / "second", tmp_path / "third"]
    assert find_dataset("ml-100k", search_dirs=dirs) == tmp_path / "second" / "ml-100k"
    ds = load_named("ml-100k", search_dirs=[tmp_path / "third", tmp_path / "second"])
    assert ds.name == "ml-100k" and len(ds.interactions) == 3
    # a search directory may itself be the dataset folder
    assert (
        find_dataset("ml-100k", search_dirs=[tmp_path / "second" / "ml-100k"])
        == tmp_path / "second" / "ml-100k"
    )
    # an empty ml-100k folder does not count
    (tmp_path / "empty" / "ml-100k").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError):
        find_dataset("ml-100k", search_dirs=[tmp_path / "empty"])


def test_ml_1m_partial_folder_name(write: Write, tmp_path: Path) -> None:
    buf = io.BytesIO()
    pl.DataFrame({"userID": ["1", "2"], "movieID": ["5", "5"]}).write_parquet(buf)
    write("d/ml-1m-partial/ratings_pairs_only.parquet", buf.getvalue())
    ds = load_named("ml-1m", search_dirs=[tmp_path / "d"])
    assert ds.name == "ml-1m-partial" and len(ds.interactions) == 2


def test_amazon_folder_prefers_the_5_core_file(write: Write, tmp_path: Path) -> None:
    line = '{"reviewerID": "u", "asin": "i", "overall": 5.0, "unixReviewTime": 1}\n'
    write("d/amazon18-gift-cards/Gift_Cards_5.json", line)
    write("d/amazon18-gift-cards/Gift_Cards.json", line * 2)  # the full file may sit beside it
    ds = load_named("amazon-gift-cards", search_dirs=[tmp_path / "d"])
    assert ds.name == "amazon-gift-cards" and len(ds.interactions) == 1


def test_online_retail_falls_back_to_the_bundled_copy(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = pl.DataFrame(
        {"InvoiceNo": ["1"], "StockCode": ["A"], "Description": ["Mug"], "Quantity": [1],
         "InvoiceDate": ["2011-01-01 10:00:00"], "UnitPrice": [1.5], "CustomerID": [12345.0]}
    )  # fmt: skip
    buf = io.BytesIO()
    df.write_parquet(buf)
    bundled = write("pkg/bundled/online_retail.parquet", buf.getvalue())
    monkeypatch.setattr(registry, "bundled_path", lambda spec: bundled)
    assert find_dataset("online-retail", search_dirs=[tmp_path / "nowhere"]) == bundled
    ds = load_named("online-retail", search_dirs=[])
    assert ds.name == "online-retail" and ds.interactions.users.ids.to_list() == ["12345"]


def test_bundled_path_is_a_file_or_none() -> None:
    path = registry.bundled_path(DATASETS["online-retail"])
    assert path is None or (path.is_file() and path.name == "online_retail.parquet")
    assert registry.bundled_path(DATASETS["ml-100k"]) is None


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("ml-100k", 100_000),
        ("ml-1m", 1_000_209),
        ("online-retail", 396_337),
        ("amazon-gift-cards", 2_972),
        ("amazon-magazine-subs", 2_333),
    ],
)
def test_shared_datasets_by_name(shared: Callable[[str], Path], name: str, rows: int) -> None:
    root = shared("")
    ds = load_named(name, search_dirs=[root])
    assert len(ds.interactions) == rows and ds.repeats is DATASETS[name].repeats
