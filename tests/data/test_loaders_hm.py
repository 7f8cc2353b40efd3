"""H&M loader on tiny Kaggle-format files."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from shortlist.data.loaders import InputNotFoundError, load_hm, load_hm_customers
from shortlist.errors import InvalidIdError, MissingColumnError, TimestampParseError

Write = Callable[[str, "str | bytes"], Path]

TX = (
    "t_dat,customer_id,article_id,price,sales_channel_id\n"
    "2018-09-20,abc,663713001,0.0508,2\n"
    "2018-09-20,abc,663713001,0.0508,2\n"  # a second unit of the same article: kept
    "2018-09-21,def,108775015,0.0102,1\n"
)
ARTICLES = (
    "article_id,product_code,prod_name,product_type_name,product_group_name,colour_group_name,detail_desc\n"
    '0663713001,663713,Atlanta Push Body Harlow,Underwear body,Underwear,Black,"Lace push-up body, padded"\n'
    "108775015,108775,Strap top,Vest top,Garment Upper body,Black,Jersey top\n"
    "999,999,Catalogue only,Sock,Socks & Tights,White,\n"
)
CUSTOMERS = (
    "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code\n"
    "abc,1.0,1.0,ACTIVE,Regularly,49,x1\n"
)


@pytest.fixture
def hm(write: Write, tmp_path: Path) -> Path:
    write("hm/transactions_train.csv", TX)
    write("hm/articles.csv", ARTICLES)
    write("hm/customers.csv", CUSTOMERS)
    return tmp_path / "hm"


def test_transactions_articles_and_customers(hm: Path) -> None:
    ds = load_hm(hm)
    assert ds.name == "hm" and ds.repeats is True
    f = ds.interactions.frame
    assert ds.interactions.users.ids.to_list() == ["abc", "def"]
    assert ds.interactions.items.ids.to_list() == ["0663713001", "0108775015", "0000000999"]
    assert f["timestamp"].to_list() == [1_537_401_600, 1_537_401_600, 1_537_488_000]  # midnight UTC
    assert f["price"].to_list() == [0.0508, 0.0508, 0.0102]
    assert f["sales_channel_id"].to_list() == [2, 2, 1]
    assert ds.report.n_output == 3 and not ds.report.removed
    assert ds.report.notes == [
        "1 identical transaction rows kept (one row per unit bought)",
        "customers.csv holds user features: load them with load_hm_customers()",
    ]
    assert ds.items is not None
    first = ds.items.frame.sort("item").to_dicts()[0]
    assert first == {
        "title": "Atlanta Push Body Harlow",
        "category": "Underwear body",
        "description": "Lace push-up body, padded",
        "product_group_name": "Underwear",
        "colour_group_name": "Black",
        "item": 0,
    }
    customers = load_hm_customers(hm)
    assert customers.columns[0] == "user_id" and customers["age"].to_list() == [49]
    assert "club_member_status" in customers.columns and "fn" in customers.columns


def test_gzipped_transactions(write: Write, tmp_path: Path) -> None:
    write("g/transactions_train.csv.gz", gzip.compress(TX.encode()))
    ds = load_hm(tmp_path / "g")
    assert len(ds.interactions) == 3 and ds.items is None


def test_bad_date_names_file_and_column(write: Write, tmp_path: Path) -> None:
    path = write("h/transactions_train.csv", TX.replace("2018-09-21", "21/09/2018"))
    with pytest.raises(TimestampParseError) as err:
        load_hm(tmp_path / "h")
    assert str(path) in str(err.value) and "'t_dat'" in str(err.value) and "21/09/2018" in str(err.value)
    ds = load_hm(tmp_path / "h", drop_invalid=True)
    assert ds.report.removed == {"unparsable t_dat (expected YYYY-MM-DD)": 1}


def test_missing_customer_and_column(write: Write, tmp_path: Path) -> None:
    write("h/transactions_train.csv", TX.replace(",def,", ",,"))
    with pytest.raises(InvalidIdError, match=r"transactions_train\.csv: column 'customer_id' has 1 null"):
        load_hm(tmp_path / "h")
    path = write("h2/transactions_train.csv", TX.replace("article_id", "articleid"))
    with pytest.raises(MissingColumnError, match=rf"{path}.*'article_id'.*Did you mean 'articleid'"):
        load_hm(tmp_path / "h2")
    with pytest.raises(InputNotFoundError, match=r"no transactions_train\.csv"):
        load_hm(tmp_path)
