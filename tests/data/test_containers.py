import numpy as np
import polars as pl
import pytest

from shortlist.data import IdMap, Interactions, build_dataset
from shortlist.errors import DataValidationError, MissingColumnError
from shortlist.schema import ITEM, TIMESTAMP, USER, WEIGHT


def raw() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": ["b", "a", "b", "c"],
            "item_id": [10, 20, 20, 30],
            "timestamp": [3, 1, 2, 5],
        }
    )


def test_id_map_first_appearance_order_and_lookup():
    m = IdMap.from_values(pl.Series(["x", "y", "x", "z"]))
    assert m.ids.to_list() == ["x", "y", "z"]
    assert m.index(["z", "nope", "x"]).to_list() == [2, None, 0]
    assert m.external(np.array([1, 0])).to_list() == ["y", "x"]
    assert m.get("y") == 1 and m.get(7) is None
    ext = m.extend(["z", "w"])
    assert ext.ids.to_list() == ["x", "y", "z", "w"] and m.ids.to_list() == ["x", "y", "z"]


def test_id_map_rejects_duplicates_and_nulls():
    with pytest.raises(ValueError):
        IdMap(pl.Series(["a", "a"]))
    with pytest.raises(ValueError):
        IdMap(pl.Series(["a", None]))


def test_int_and_string_ids_are_the_same_id():
    m = IdMap.from_values(pl.Series([1, 2]))
    assert m.get(1) == 0 and m.get("2") == 1


def test_interactions_from_frame_maps_ids_in_order():
    inter = Interactions.from_frame(raw())
    assert inter.users.ids.to_list() == ["b", "a", "c"]
    assert inter.items.ids.to_list() == ["10", "20", "30"]
    assert inter.frame.get_column(USER).to_list() == [0, 1, 0, 2]
    assert inter.frame.get_column(ITEM).to_list() == [0, 1, 1, 2]
    assert inter.frame.get_column(WEIGHT).to_list() == [1.0] * 4
    assert inter.frame.schema[USER] == pl.Int32 and inter.frame.schema[TIMESTAMP] == pl.Int64
    assert inter.time_span() == (1, 5)
    assert inter.active_users().tolist() == [0, 1, 2]


def test_to_csr_sums_repeats_and_binary():
    df = pl.concat([raw(), raw().head(1).with_columns(pl.lit(9, pl.Int64).alias("timestamp"))])
    inter = Interactions.from_frame(df)
    m = inter.to_csr()
    assert m.shape == (3, 3)
    assert m[0, 0] == 2.0 and m[0, 1] == 1.0 and m[1, 1] == 1.0
    assert inter.to_csr(binary=True)[0, 0] == 1.0


def test_subsets_share_id_maps_and_fingerprint_changes():
    inter = Interactions.from_frame(raw())
    sub = inter.filter(pl.col(USER) == 0)
    assert sub.users is inter.users and sub.n_items == 3 and len(sub) == 2
    assert sub.fingerprint() != inter.fingerprint()
    assert Interactions.from_frame(raw()).fingerprint() == inter.fingerprint()


def test_build_dataset_catalogue_items_come_after_interacted_items():
    items = pl.DataFrame({"item_id": ["99", "20"], "title": ["new thing", "old thing"]})
    ds = build_dataset(raw(), items)
    assert ds.interactions.items.ids.to_list() == ["10", "20", "30", "99"]
    assert ds.items is not None
    assert ds.items.frame.get_column(ITEM).to_list() == [1, 3]
    assert ds.items.aligned("title").to_list() == [None, "old thing", None, "new thing"]


def test_build_dataset_counts_repeated_catalogue_rows():
    items = pl.DataFrame({"item_id": ["10", "10", None], "title": ["a", "b", "c"]})
    ds = build_dataset(raw(), items)
    assert ds.items is not None and ds.items.aligned("title").to_list()[0] == "a"
    assert any("repeated catalogue rows" in n for n in ds.report.notes)
    assert "<items>: dropped 1 catalogue rows with a null or empty item_id" in ds.report.notes
    assert ds.report.removed == {}


def test_items_need_item_id():
    with pytest.raises(MissingColumnError, match="item_id"):
        build_dataset(raw(), pl.DataFrame({"sku": ["1"]}))


def test_items_from_frame_rejects_unknown_ids():
    inter = Interactions.from_frame(raw())
    from shortlist.data import Items

    with pytest.raises(DataValidationError, match="not in the id map"):
        Items.from_frame(pl.DataFrame({"item_id": ["nope"]}), inter.items)


def test_basket_size_is_the_median_basket():
    df = raw().with_columns(pl.Series("basket", ["x", "x", "y", "z"]))
    assert Interactions.from_frame(df).basket_size() == 1.0  # baskets of 2, 1, 1
    assert Interactions.from_frame(raw()).basket_size() == 0.0


def test_binary_matrix_is_built_once_and_read_only():
    inter = Interactions.from_frame(raw())
    m = inter.to_csr(binary=True)
    assert inter.to_csr(binary=True) is m
    assert m.toarray().tolist() == inter.to_csr().sign().toarray().tolist()
    with pytest.raises(ValueError, match="read-only"):
        m.data[0] = 5.0
    counts = inter.to_csr()  # not the cached one: a fresh, writable matrix
    counts.data[0] = 5.0
    assert inter.filter(pl.col(USER) != 0).to_csr(binary=True) is not m  # each log its own
    assert inter.cached("k", lambda: [1]) is inter.cached("k", lambda: [2])
