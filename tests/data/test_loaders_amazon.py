"""Amazon Reviews loader: 2018 and 2023 formats, text/price clean-up with counts, real files."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from shortlist.data.loaders import InputNotFoundError, UnreadableFileError, load_amazon
from shortlist.errors import InvalidIdError, MissingColumnError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]


def _jsonl(rows: list[dict[str, object]], *, gz: bool = False) -> bytes:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return gzip.compress(data) if gz else data


def _review18(user: str, item: str, rating: float, ts: int, text: str = "ok") -> dict[str, object]:
    return {
        "overall": rating,
        "verified": True,
        "reviewerID": user,
        "asin": item,
        "reviewText": text,
        "summary": "Five Stars",
        "unixReviewTime": ts,
        "style": {"Gift Amount:": " 50"},
    }


REVIEWS_2018 = [
    _review18("u1", "i1", 5.0, 1_529_193_600),
    _review18("u2", "i1", 4.0, 1_528_934_400),
    _review18("u1", "i1", 5.0, 1_529_193_600),  # exact duplicate line → dropped, counted
    _review18("u1", "i2", 3.0, 1_528_848_000),
    _review18("u1", "i1", 5.0, 1_529_193_600, text="again"),  # repeated pair, different text → kept
]
JUNK_TITLE = '<span class="a-size-medium a-color-secondary"'
META_2018: list[dict[str, object]] = [
    {
        "asin": "i1",
        "title": "Vic &amp; Anthony&#39;s",
        "description": ["<b>Great</b> card", "Second &ndash; part"],
        "feature": ["f1", "f2"],
        "brand": "Vic",
        "category": ["Gift Cards", "Restaurants"],
        "price": "$25.00",
        "details": {"\n  Weight: \n": "3 ounces"},
        "main_cat": "Gift Cards",
    },
    {
        "asin": "i2",
        "title": JUNK_TITLE,
        "description": [],
        "feature": [],
        "brand": "",
        "category": ["Gift Cards"],
        "price": ".a-box-inner{background-color:#fff}",
        "main_cat": "<img src=x>",
    },
    {
        "asin": "i2",
        "title": JUNK_TITLE,
        "description": [],
        "feature": [],
        "brand": "",
        "category": ["Gift Cards"],
        "price": ".a-box-inner{background-color:#fff}",
        "main_cat": "<img src=x>",
    },
    {
        "asin": "i3",
        "title": ' Magazines" />',
        "description": "One string, not a list",
        "price": "$1,299.99",
        "category": "Gift Cards",
    },
    {"asin": "i1", "title": "Other copy", "price": ""},
]


@pytest.fixture
def amazon18(write: Write, tmp_path: Path) -> Path:
    write("a18/Gift_Cards_5.json.gz", _jsonl(REVIEWS_2018, gz=True))
    write("a18/meta_Gift_Cards.json.gz", _jsonl(META_2018, gz=True))
    return tmp_path / "a18"


def test_2018_reviews_and_metadata(amazon18: Path) -> None:
    ds = load_amazon(amazon18)
    assert ds.name == "amazon-gift-cards" and ds.repeats is False
    r = ds.report
    assert (r.n_input, r.n_output) == (5, 4) and r.removed == {"exact duplicate review lines": 1}
    assert r.notes == [
        "1 reviews repeat an earlier (user, item) pair with different content (kept)",
        "meta_Gift_Cards.json.gz: 1 exact duplicate metadata lines dropped",
        "meta_Gift_Cards.json.gz: 1 repeated item ids with different metadata (kept the first)",
        "meta_Gift_Cards.json.gz: 2 titles that are scraped HTML fragments set to null",
        "meta_Gift_Cards.json.gz: 1 prices that are not prices (scraped CSS/HTML) set to null",
    ]
    f = ds.interactions.frame
    assert ds.interactions.users.ids.to_list() == ["u1", "u2"]
    assert ds.interactions.items.ids.to_list() == ["i1", "i2", "i3"]
    assert f["rating"].to_list() == [5.0, 4.0, 3.0, 5.0]
    assert f["timestamp"].to_list() == [1_529_193_600, 1_528_934_400, 1_528_848_000, 1_529_193_600]
    assert f["review_text"].to_list() == ["ok", "ok", "ok", "again"] and f["verified"].all()
    assert ds.items is not None
    rows = {ds.interactions.items.ids[r.pop("item")]: r for r in ds.items.frame.to_dicts()}
    assert rows["i1"] == {
        "title": "Vic & Anthony's",
        "description": "Great card Second – part",
        "features": "f1 | f2",
        "brand": "Vic",
        "category": "Gift Cards > Restaurants",
        "price": 25.0,
        "main_category": "Gift Cards",
    }
    assert rows["i2"]["title"] is None and rows["i2"]["price"] is None and rows["i2"]["brand"] is None
    assert rows["i2"]["main_category"] is None  # markup only
    assert rows["i3"]["title"] is None and rows["i3"]["price"] == 1299.99
    assert rows["i3"]["description"] == "One string, not a list" and rows["i3"]["category"] == "Gift Cards"


def test_2018_without_text_and_explicit_meta_path(amazon18: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    reviews = (amazon18 / "Gift_Cards_5.json.gz").rename(tmp_path / "elsewhere" / "reviews.json.gz")
    ds = load_amazon(reviews, keep_text=False, name="gc")
    assert ds.items is None and ds.name == "gc"  # no meta_ sibling for this file name
    assert "review_text" not in ds.interactions.frame.columns
    ds = load_amazon(reviews, amazon18 / "meta_Gift_Cards.json.gz")
    assert ds.items is not None and len(ds.items) == 3


def test_2023_format(write: Write, tmp_path: Path) -> None:
    reviews = [
        {
            "rating": 5.0,
            "title": "Nice",
            "text": "Love it",
            "images": [],
            "asin": "B01",
            "parent_asin": "P1",
            "user_id": "U1",
            "timestamp": 1_588_687_728_923,
            "helpful_vote": 0,
            "verified_purchase": True,
        },
        {
            "rating": 2.0,
            "title": "Meh",
            "text": "No",
            "images": [{"small_image_url": "x"}],
            "asin": "B02",
            "parent_asin": "P1",
            "user_id": "U2",
            "timestamp": 1_588_687_729_000,
            "helpful_vote": 1,
            "verified_purchase": False,
        },
    ]
    meta: list[dict[str, object]] = [
        {
            "main_category": "All Beauty",
            "title": "Soap &amp; More",
            "features": ["Gentle"],
            "description": [],
            "price": 12.99,
            "store": "Acme",
            "categories": [],
            "details": {"Brand": "Acme"},
            "parent_asin": "P1",
        },
        {
            "main_category": "All Beauty",
            "title": "Brush",
            "features": [],
            "description": ["Soft <br/>bristles"],
            "price": None,
            "store": None,
            "categories": ["Beauty", "Tools"],
            "parent_asin": "P2",
        },
    ]
    write("a23/All_Beauty.jsonl", _jsonl(reviews))
    write("a23/meta_All_Beauty.jsonl", _jsonl(meta))
    ds = load_amazon(tmp_path / "a23")
    assert ds.name == "amazon-all-beauty"
    f = ds.interactions.frame
    assert f["timestamp"].to_list() == [1_588_687_728, 1_588_687_729]  # milliseconds → seconds
    assert f["verified"].to_list() == [True, False] and f["review_title"].to_list() == ["Nice", "Meh"]
    assert ds.interactions.items.ids.to_list() == ["P1", "P2"]  # keyed by parent_asin
    assert ds.items is not None
    assert ds.items.aligned("title").to_list() == ["Soap & More", "Brush"]
    assert ds.items.aligned("price").to_list() == [12.99, None]
    assert ds.items.aligned("brand").to_list() == ["Acme", None]
    assert ds.items.aligned("category").to_list() == [None, "Beauty > Tools"]
    assert ds.items.aligned("description").to_list() == [None, "Soft bristles"]
    assert ds.report.notes == []


def test_unknown_review_format_names_file_and_column(write: Write) -> None:
    path = write("x.jsonl", _jsonl([{"reviewer": "u", "item": "i", "time": 1}]))
    with pytest.raises(MissingColumnError) as err:
        load_amazon(path)
    assert str(path) in str(err.value) and "'reviewerID'" in str(err.value)


def test_missing_required_field_names_it(write: Write) -> None:
    path = write("x.jsonl", _jsonl([{"reviewerID": "u", "asin": "i", "overall": 5.0}]))
    with pytest.raises(MissingColumnError, match=r"x\.jsonl.*'unixReviewTime'"):
        load_amazon(path)


def test_null_ids_and_bad_times_name_the_source_field(write: Write) -> None:
    rows = [_review18("u1", "i1", 5.0, 1), {**_review18("u2", "i1", 5.0, 2), "reviewerID": None}]
    path = write("ids.jsonl", _jsonl(rows))
    with pytest.raises(InvalidIdError, match=r"ids\.jsonl: column 'reviewerID' has 1 null"):
        load_amazon(path)
    assert load_amazon(path, drop_invalid=True).report.removed == {"null or empty reviewerID": 1}
    rows = [_review18("u1", "i1", 5.0, 1), {**_review18("u2", "i1", 5.0, 2), "unixReviewTime": "June"}]
    path = write("ts.jsonl", _jsonl(rows))
    with pytest.raises(TimestampParseError, match=r"ts\.jsonl: column 'unixReviewTime' has 1 .*June"):
        load_amazon(path)


def test_invalid_json_line_is_located(write: Write) -> None:
    good = json.dumps(_review18("u1", "i1", 5.0, 1))
    path = write("bad.json", f"{good}\n{good[:-5]}\n")
    with pytest.raises(
        UnreadableFileError, match=r"bad\.json: cannot read the file \(line 2 is not valid JSON\)"
    ):
        load_amazon(path)


def test_folder_with_two_review_files_is_ambiguous(write: Write, tmp_path: Path) -> None:
    write("two/A_5.json", _jsonl(REVIEWS_2018))
    write("two/B_5.json", _jsonl(REVIEWS_2018))
    with pytest.raises(InputNotFoundError, match=r"exactly one review file.*A_5\.json.*B_5\.json"):
        load_amazon(tmp_path / "two")


@pytest.mark.shared
@pytest.mark.slow
def test_shared_gift_cards(shared: Callable[[str], Path]) -> None:
    ds = load_amazon(shared("amazon18-gift-cards"))
    inter = ds.interactions
    assert ds.report.n_input == 2_972 and not ds.report.removed  # no exact duplicates in this file
    assert len(inter) == 2_972 and inter.n_users == 458 and inter.frame["item"].n_unique() == 148
    assert inter.time_span() == (1_327_968_000, 1_534_896_000)  # 2012-01-31 – 2018-08-22
    counts = inter.frame["rating"].value_counts().sort("rating")["count"].to_list()
    assert counts == [22, 11, 33, 154, 2_752]
    assert ds.items is not None and len(ds.items) == 1_547 and inter.n_items == 1_547
    items = ds.items.frame.filter(ds.items.frame["item"] < 148)  # the reviewed items come first
    assert items["title"].null_count() == 0
    assert (items["description"].is_not_null().sum(), items["price"].is_not_null().sum()) == (145, 107)
    assert ds.items.frame["price"].is_not_null().sum() == 358
    assert not ds.items.frame["title"].str.contains("&amp;|&#39;").any()
    assert (
        "meta_Gift_Cards.json.gz: 4 prices that are not prices (scraped CSS/HTML) set to null"
        in ds.report.notes
    )


@pytest.mark.shared
@pytest.mark.slow
def test_shared_magazine_subscriptions(shared: Callable[[str], Path]) -> None:
    ds = load_amazon(shared("amazon18-magazine-subs"))
    inter = ds.interactions
    assert ds.report.n_input == 2_375 and ds.report.removed == {"exact duplicate review lines": 42}
    assert len(inter) == 2_333 and inter.n_users == 348 and inter.frame["item"].n_unique() == 157
    assert inter.time_span() == (1_005_523_200, 1_526_774_400)  # 2001-11-12 – 2018-05-20
    assert ds.items is not None and len(ds.items) == 2_320
    reviewed = ds.items.frame.filter(ds.items.frame["item"] < 157)
    assert len(reviewed) == 151  # 6 reviewed items are missing from the metadata
    assert sorted(reviewed["title"].drop_nulls().to_list()) == [
        "Gourmet (1-year)",
        "SmartMoney (1-year)",
        "Woman's Day",
    ]
    assert reviewed["description"].is_not_null().sum() == 145  # 146 lists, one holds only empty strings
    assert ds.items.frame["price"].is_not_null().sum() == 0
    name = "meta_Magazine_Subscriptions.json.gz"
    assert ds.report.notes[1:] == [
        f"{name}: 1,065 exact duplicate metadata lines dropped",
        f"{name}: 2,173 titles that are scraped HTML fragments set to null",
        f"{name}: 16 prices that are not prices (scraped CSS/HTML) set to null",
    ]
