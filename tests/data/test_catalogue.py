"""Catalogues with partial or multi-valued metadata (issue 21, bug 7): list values, category sets, gaps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from shortlist.data import build_dataset
from shortlist.data.catalogue import category_lists, category_set
from shortlist.data.loaders import load_dataset, load_items

Write = Callable[[str, "str | bytes"], Path]
T0 = 1_600_000_000
INTER = f"user_id,item_id,timestamp\nu1,a,{T0}\nu1,b,{T0 + 1}\nu2,c,{T0 + 2}\nu2,d,{T0 + 3}\n"


def test_json_catalogue_with_list_valued_category(write: Write) -> None:
    items = write("items.jsonl", (
        '{"item_id": "a", "title": "A", "category": ["Books", "Fiction"], "tags": ["x", "y"]}\n'
        '{"item_id": "b", "title": "B", "category": ["Books"], "tags": []}\n'
        '{"item_id": "c", "title": "C", "category": [], "tags": null}\n'
    ))
    ds = load_dataset(write("inter.csv", INTER), items)
    assert ds.items is not None
    assert ds.items.aligned("category").to_list() == ["Books | Fiction", "Books", None, None]
    assert ds.items.aligned("tags").to_list() == ["x | y", None, None, None]
    assert ds.items.category_sets() == [frozenset({"Books", "Fiction"}), frozenset({"Books"}), frozenset(),
                                        frozenset()]


def test_json_catalogue_mixing_list_and_string_categories(write: Write) -> None:
    items = write("items.jsonl", '{"item_id": "a", "category": ["Drama", "Crime"]}\n{"item_id": "b", "category": "Drama"}\n')
    assert load_items(items).get_column("category").to_list() == ["Drama | Crime", "Drama"]


def test_json_array_catalogue_with_nested_category_paths(write: Write) -> None:
    # Amazon 2014 metadata: a list of category paths per product.
    items = write("items.json", '[{"item_id": "a", "category": [["Books", "Fiction"], ["Kindle Store"]]},'
                                '{"item_id": "b", "category": [["Books"]]}]')
    frame = load_items(items)
    assert frame.get_column("category").to_list() == ["Books > Fiction | Kindle Store", "Books"]
    assert category_lists(frame.get_column("category")).to_list() == [["Books", "Fiction", "Kindle Store"],
                                                                      ["Books"]]


def test_category_sets_split_genres_lists_and_paths() -> None:
    values = pl.Series(["Crime|Thriller", "Gift Cards > Recipients > For Him", "Books | Books > Fiction", None, " "])
    assert category_lists(values).to_list() == [
        ["Crime", "Thriller"], ["Gift Cards", "Recipients", "For Him"], ["Books", "Fiction"], [], []]
    assert category_set("Drama|Crime") == frozenset({"Drama", "Crime"})
    assert category_set(None) == frozenset()


def test_partial_catalogue_items_lacking_category_or_title(write: Write) -> None:
    items = write("items.csv", "item_id,title,category\na,Red mug,Kitchen > Mugs\nb,,\nc,Blue mug,\n")
    ds = load_dataset(write("inter.csv", INTER), items)  # d has no catalogue row at all
    assert ds.items is not None and len(ds.items) == 3
    assert ds.items.aligned("title").to_list() == ["Red mug", None, "Blue mug", None]
    assert ds.items.category_sets() == [frozenset({"Kitchen", "Mugs"}), frozenset(), frozenset(), frozenset()]
    assert ds.items.category_lists().dtype == pl.List(pl.Utf8)


def test_catalogue_without_a_category_column_has_empty_sets() -> None:
    inter = pl.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [T0]})
    ds = build_dataset(inter, pl.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]}))
    assert ds.items is not None and ds.items.category_sets() == [frozenset(), frozenset()]


def test_in_memory_catalogue_with_list_and_object_columns() -> None:
    inter = pl.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [T0]})
    items = pl.DataFrame({"item_id": ["a", "b"], "category": [["Toys", "Games"], None],
                          "details": [{"colour": "red"}, None]})
    ds = build_dataset(inter, items)
    assert ds.items is not None
    assert ds.items.aligned("category").to_list() == ["Toys | Games", None]
    assert ds.items.aligned("details").to_list() == ['{"colour":"red"}', None]
