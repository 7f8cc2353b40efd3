"""MovieLens loaders on tiny hand-written files of each release, plus the shared real files."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shortlist.data.loaders import (
    InputNotFoundError,
    UnreadableFileError,
    load_movielens,
    load_movielens_users,
)
from shortlist.data.loaders.movielens import PAIRS_ONLY_NOTE
from shortlist.data.split import default_protocol, split_by_protocol
from shortlist.errors import MissingColumnError, NoTimestampsError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]


def _flags(*on: int) -> str:
    return "|".join("1" if i in on else "0" for i in range(19))


@pytest.fixture
def ml100k(write: Write, tmp_path: Path) -> Path:
    write("ml-100k/u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t4\t881250951\n")
    items = (
        f"10|Caf\xe9 (1995)|01-Jan-1995||http://imdb/10|{_flags(5)}\n"
        f"20|Heat (1995)|15-Dec-1995||http://imdb/20|{_flags(1, 6, 16)}\n"
        f"30|unknown||||{_flags(0)}\n"
    )
    write("ml-100k/u.item", items.encode("latin-1"))
    write("ml-100k/u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    return tmp_path / "ml-100k"


def test_ml_100k(ml100k: Path) -> None:
    ds = load_movielens(ml100k)
    assert ds.name == "ml-100k" and ds.repeats is False
    f = ds.interactions.frame
    assert ds.interactions.users.ids.to_list() == ["1", "2"]
    assert ds.interactions.items.ids.to_list() == ["10", "20", "30"]  # 30 is catalogue-only
    assert f["rating"].to_list() == [5.0, 3.0, 4.0]
    assert f["timestamp"].to_list() == [881250949, 881250950, 881250951]
    assert ds.items is not None
    rows = ds.items.frame.sort("item").to_dicts()
    assert rows[0]["title"] == "Café (1995)"  # latin-1 decoded
    assert [r["category"] for r in rows] == ["Comedy", "Action|Crime|Thriller", "unknown"]
    assert [r["year"] for r in rows] == [1995, 1995, None]
    assert str(rows[1]["release_date"]) == "1995-12-15" and rows[2]["release_date"] is None
    assert rows[0]["imdb_url"] == "http://imdb/10"
    users = load_movielens_users(ml100k)
    assert users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert users["age"].to_list() == [24, 53]


def test_ml_100k_accepts_a_file_inside_the_folder(ml100k: Path) -> None:
    assert len(load_movielens(ml100k / "u.data").interactions) == 3


def test_gzipped_files(write: Write, tmp_path: Path) -> None:
    write("gz/u.data.gz", gzip.compress(b"1\t10\t5\t881250949\n"))
    write("gz/u.item.gz", gzip.compress(f"10|Caf\xe9 (1995)|01-Jan-1995||u|{_flags(5)}\n".encode("latin-1")))
    ds = load_movielens(tmp_path / "gz")
    assert len(ds.interactions) == 1
    assert ds.items is not None and ds.items.aligned("title").to_list() == ["Café (1995)"]


def test_ml_100k_bad_timestamp_names_file_and_column(write: Write, tmp_path: Path) -> None:
    path = write("ml/u.data", "1\t10\t5\t881250949\n2\t10\t3\tsoon\n")
    with pytest.raises(TimestampParseError) as err:
        load_movielens(tmp_path / "ml")
    assert str(path) in str(err.value) and "'timestamp'" in str(err.value) and "soon" in str(err.value)


def test_ml_100k_wrong_field_count(write: Write, tmp_path: Path) -> None:
    path = write("ml/u.data", "1\t10\t5\n")
    with pytest.raises(UnreadableFileError, match=rf"{path}: cannot read the file"):
        load_movielens(tmp_path / "ml")


def test_ml_1m_ratings_dat(write: Write, tmp_path: Path) -> None:
    write("ml-1m/ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(
        "ml-1m/movies.dat",
        "1193::One Flew (1975)::Drama\n661::Caf\xe9 (1996)::Animation|Musical\n".encode("latin-1"),
    )
    write("ml-1m/users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_movielens(tmp_path / "ml-1m")
    assert ds.name == "ml-1m" and not ds.report.notes
    assert ds.interactions.frame["timestamp"].to_list() == [978300760, 978302109, 978298413]
    assert ds.items is not None
    assert ds.items.aligned("category").to_list() == ["Drama", "Animation|Musical"]
    assert ds.items.aligned("title").to_list()[1] == "Café (1996)"
    assert load_movielens_users(tmp_path / "ml-1m")["gender"].to_list() == ["F", "M"]


def test_ml_1m_pairs_only_gets_a_synthetic_order(write: Write, tmp_path: Path) -> None:
    pairs = pl.DataFrame({"userID": ["1", "1", "2"], "movieID": ["1193", "661", "1193"]})
    buf = io.BytesIO()
    pairs.write_parquet(buf)
    write("ml-1m-partial/ratings_pairs_only.parquet", buf.getvalue())
    ds = load_movielens(tmp_path / "ml-1m-partial")
    assert ds.name == "ml-1m-partial"
    assert ds.interactions.frame["timestamp"].to_list() == [0, 1, 2]
    assert "rating" not in ds.interactions.frame.columns
    assert ds.report.notes == [PAIRS_ONLY_NOTE] and "row position" in PAIRS_ONLY_NOTE
    assert ds.items is None
    assert not ds.has_time and not ds.interactions.has_time  # issue 21, bug 17
    buf = io.BytesIO()
    pairs.rename({"userID": "user"}).write_parquet(buf)
    write("bad/ratings_pairs_only.parquet", buf.getvalue())
    with pytest.raises(MissingColumnError, match=r"ratings_pairs_only\.parquet.*'userID'"):
        load_movielens(tmp_path / "bad")


def test_ml_latest_small(write: Write, tmp_path: Path) -> None:
    write(
        "ml-latest-small/ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n",
    )
    write(
        "ml-latest-small/movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"American President, The (1995)",'
        "(no genres listed)\n",
    )
    ds = load_movielens(tmp_path / "ml-latest-small")
    assert ds.name == "ml-latest-small"
    assert ds.interactions.frame["rating"].to_list() == [4.0, 4.5]
    assert ds.items is not None
    assert ds.items.aligned("title").to_list() == ["Toy Story (1995)", "American President, The (1995)"]
    assert ds.items.aligned("category").to_list() == ["Adventure|Animation", None]


def test_unknown_folder(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="no MovieLens ratings file") as err:
        load_movielens(tmp_path)
    assert str(tmp_path) in str(err.value) and "shortlist download" in str(err.value)


@pytest.mark.shared
@pytest.mark.slow
def test_shared_ml_100k(shared: Callable[[str], Path]) -> None:
    ds = load_movielens(shared("ml-100k"))
    inter = ds.interactions
    assert (len(inter), inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    assert ds.report.n_output == 100_000 and not ds.report.removed
    counts = inter.frame["rating"].value_counts().sort("rating")["count"].to_list()
    assert counts == [6_110, 11_370, 27_145, 34_174, 21_201]
    assert inter.time_span() == (874_724_710, 893_286_638)  # 1997-09-20 03:05:10 – 1998-04-22 23:10:38
    assert ds.items is not None and len(ds.items) == 1_682
    assert ds.items.frame["category"].str.split("|").explode().n_unique() == 19
    assert len(load_movielens_users(shared("ml-100k"))) == 943


@pytest.mark.shared
@pytest.mark.slow
def test_shared_ml_1m_partial(shared: Callable[[str], Path]) -> None:
    ds = load_movielens(shared("ml-1m-partial"))
    f = ds.interactions.frame
    assert ds.name == "ml-1m-partial" and len(f) == 1_000_209
    assert f["user"].n_unique() == 6_040 and f["item"].n_unique() == 3_706
    assert ds.items is not None and len(ds.items) == 3_883
    assert f["timestamp"].to_list()[:3] == [0, 1, 2] and ds.report.notes == [PAIRS_ONLY_NOTE]
    first = f.head(3)["item"].to_list()
    assert [ds.interactions.items.ids[i] for i in first] == ["1193", "661", "914"]  # original order
    assert not ds.has_time
    with pytest.raises(NoTimestampsError, match=r"ml-1m-partial has no timestamps.*random:0\.2"):
        split_by_protocol(ds.interactions, "llo", repeats=False, dataset=ds.name)
    split = split_by_protocol(ds.interactions, default_protocol(ds.interactions, "llo"), repeats=False)
    assert split.protocol == "random:0.2" and len(split.test_users) == 6_040
