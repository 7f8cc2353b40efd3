"""RetailRocket loader on tiny Kaggle-format files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shortlist.data.loaders import load_retailrocket
from shortlist.errors import ColumnTypeError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]

EVENTS = (
    "timestamp,visitorid,event,itemid,transactionid\n"
    "1433221332117,257597,view,355908,\n"
    "1433224214164,992329,view,248676,\n"
    "1433221999827,111016,addtocart,10572,\n"
    "1433222276276,483717,transaction,253185,4000\n"
    "1433222276276,483717,transaction,253185,4000\n"  # logged twice: dropped with a count
)
PART1 = (
    "timestamp,itemid,property,value\n"
    "1435460400000,355908,categoryid,1338\n"
    "1441508400000,355908,categoryid,1339\n"  # later value wins
    "1439089200000,355908,available,1\n"
    "1439089200000,248676,790,n5760.000\n"  # other properties are ignored
)
PART2 = (
    "timestamp,itemid,property,value\n1431226800000,10572,categoryid,1277\n1431226800000,10572,available,0\n"
)
TREE = "categoryid,parentid\n1339,250\n1277,250\n250,\n1338,\n"


@pytest.fixture
def rr(write: Write, tmp_path: Path) -> Path:
    write("rr/events.csv", EVENTS)
    write("rr/item_properties_part1.csv", PART1)
    write("rr/item_properties_part2.csv", PART2)
    write("rr/category_tree.csv", TREE)
    return tmp_path / "rr"


def test_events_and_latest_item_properties(rr: Path) -> None:
    ds = load_retailrocket(rr)
    assert ds.name == "retailrocket" and ds.repeats is True
    assert ds.report.n_input == 5 and ds.report.removed == {"exact duplicate rows": 1}
    f = ds.interactions.frame
    assert f["event"].to_list() == ["view", "view", "cart", "purchase"]
    assert f["weight"].to_list() == [1.0] * 4  # the model weighs event types (shortlist.data.events)
    # events without a transaction get their own basket, one per (user, timestamp) (issue 21, bug 9)
    assert f["basket"].to_list() == ["257597@1433221332#own", "992329@1433224214#own", "111016@1433221999#own", "4000"]
    assert f["timestamp"].to_list() == [1_433_221_332, 1_433_224_214, 1_433_221_999, 1_433_222_276]
    assert ds.interactions.users.ids.to_list() == ["257597", "992329", "111016", "483717"]
    assert ds.items is not None
    ids = ds.interactions.items.ids
    rows = {ids[r.pop("item")]: r for r in ds.items.frame.to_dicts()}
    assert rows == {
        "355908": {"category": "1339", "available": 1, "category_path": "250 > 1339"},
        "10572": {"category": "1277", "available": 0, "category_path": "250 > 1277"},
    }


def test_unknown_event_names_file_and_column(write: Write, tmp_path: Path) -> None:
    path = write("r/events.csv", EVENTS.replace("addtocart", "wishlist"))
    with pytest.raises(ColumnTypeError) as err:
        load_retailrocket(tmp_path / "r")
    assert str(path) in str(err.value) and "'event'" in str(err.value) and "wishlist" in str(err.value)
    ds = load_retailrocket(tmp_path / "r", drop_invalid=True)
    assert ds.report.removed == {"unknown event type": 1, "exact duplicate rows": 1}


def test_bad_timestamp_names_file_and_column(write: Write, tmp_path: Path) -> None:
    path = write("r/events.csv", EVENTS.replace("1433224214164", "noon"))
    with pytest.raises(TimestampParseError, match=rf"{path}: column 'timestamp' has 1 .*noon"):
        load_retailrocket(path)
