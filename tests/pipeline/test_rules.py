"""Business rules: parsing, compiling against a catalogue, and each rank step on hand-built lists."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from shortlist.data.catalogue import Items
from shortlist.data.ids import IdMap
from shortlist.errors import RulesError
from shortlist.pipeline.item_rules import ItemRules, RuleCatalogue, compact, within_cap
from shortlist.pipeline.rules import Boost, Pin, Rules
from shortlist.retrieval.union import CandidateUnion


def catalogue() -> RuleCatalogue:
    """Five items: a0 Books > Fiction 5.0, a1 Music 20.0, a2 (no category, no price), a3 music 8.0,
    a4 Books|Kids 12.5 (a3's category spelled in lower case: the same cap group as a1)."""
    ids = IdMap(pl.Series(["a0", "a1", "a2", "a3", "a4"]))
    frame = pl.DataFrame({"item": pl.Series([0, 1, 2, 3, 4], dtype=pl.Int32),
                          "category": ["Books > Fiction", "Music", None, "music ", "Books|Kids"],
                          "price": [5.0, 20.0, None, 8.0, 12.5]})
    return RuleCatalogue.build(ids, 5, Items(frame, ids))


# --- parsing ---------------------------------------------------------------------------------------
def test_from_mapping_normalises_ids_and_round_trips():
    rules = Rules.from_mapping({"available_items": [17850, "17850", " 12.0 "], "exclude_items": ["x"],
                                "categories": [" Books "], "min_price": 1, "max_price": 9.5,
                                "boosts": [{"items": [7], "multiply": 2}], "pins": [{"item_id": 3, "position": 2}],
                                "max_per_category": 2, "widen": 4})
    assert rules.available_items == ("17850", "12") and rules.categories == ("Books",)
    assert rules.boosts == (Boost(items=("7",), multiply=2.0),) and rules.pins == (Pin("3", 2),)
    assert (rules.min_price, rules.max_price, rules.max_per_category, rules.widen) == (1.0, 9.5, 2, 4)
    assert Rules.from_mapping(rules.to_json()) == rules
    assert Rules().empty and not rules.empty and Rules(widen=2).empty


@pytest.mark.parametrize(("data", "field"), [
    ({"colour": "red"}, "colour"),
    ({"min_price": 10, "max_price": 5}, "min_price"),
    ({"min_price": -1}, "min_price"),
    ({"max_price": float("nan")}, "max_price"),
    ({"min_price": "cheap"}, "min_price"),
    ({"max_per_category": 0}, "max_per_category"),
    ({"max_per_category": 1.5}, "max_per_category"),
    ({"widen": 0}, "widen"),
    ({"widen": 1000}, "widen"),
    ({"exclude_items": "a1"}, "exclude_items"),
    ({"exclude_items": [True]}, "exclude_items"),
    ({"exclude_items": [""]}, "exclude_items"),
    ({"categories": [""]}, "categories"),
    ({"boosts": [{"items": ["a"], "multiply": 0}]}, "boosts[0]"),
    ({"boosts": [{"items": ["a"], "add": math.inf}]}, "boosts[0]"),
    ({"boosts": [{"multiply": 2}]}, "boosts[0]"),
    ({"boosts": [{"items": ["a"], "weight": 2}]}, "boosts[0]"),
    ({"pins": [{"item_id": "a", "position": 0}]}, "pins"),
    ({"pins": [{"item_id": "a", "position": 1}, {"item_id": "b", "position": 1}]}, "pins"),
    ({"pins": [{"item_id": "a", "position": 1}, {"item_id": "a", "position": 2}]}, "pins"),
    ({"pins": [{"item_id": "a"}]}, "pins[0]"),
])
def test_bad_rules_name_the_rule(data, field):
    with pytest.raises(RulesError) as e:
        Rules.from_mapping(data)
    assert e.value.field == field and str(e.value).startswith(f"rules: {field}: ")


# --- compiling -------------------------------------------------------------------------------------
def test_compile_filters_every_rule_kind():
    cat = catalogue()
    compiled = ItemRules.compile(Rules(categories=("BOOKS",), exclude_items=("a4", "gone")), cat)
    assert compiled.allowed.tolist() == [True, False, False, False, False]
    assert compiled.ignored == (("exclude_items", 1),)
    assert ItemRules.compile(Rules(min_price=8, max_price=20), cat).allowed.tolist() == [False, True, False, True, True]
    assert ItemRules.compile(Rules(max_price=0), cat).allowed.tolist() == [False] * 5
    assert ItemRules.compile(Rules(available_items=("a2", "a3")), cat).allowed.tolist() == [False, False, True, True, False]
    assert ItemRules.compile(Rules(available_items=()), cat).allowed.tolist() == [False] * 5
    assert ItemRules.compile(Rules(categories=("kids", "fiction")), cat).allowed.tolist() == [True, False, False, False, True]
    assert ItemRules.compile(Rules(), cat).allowed is None


def test_compile_boosts_pins_and_cap():
    cat = catalogue()
    rules = Rules(boosts=(Boost(items=("a1",), multiply=math.e), Boost(categories=("music",), add=0.5)),
                  pins=(Pin("a4", 3), Pin("a0", 1)), max_per_category=2)
    compiled = ItemRules.compile(rules, cat)
    np.testing.assert_allclose(compiled.bonus, [0, 1.5, 0, 0.5, 0], atol=1e-6)
    assert compiled.pins == ((0, 0), (4, 2)) and compiled.cap == 2
    assert compiled.groups[1] == compiled.groups[3] != compiled.groups[0] and compiled.groups[2] == -1
    with pytest.raises(RulesError, match="unknown to the model") as e:
        ItemRules.compile(Rules(pins=(Pin("nope", 1),)), cat)
    assert e.value.field == "pins[0]"


def test_rules_the_catalogue_cannot_answer_are_errors():
    bare = RuleCatalogue.build(IdMap(pl.Series(["a", "b"])), 2, None)
    for rules, field in [(Rules(categories=("x",)), "categories"), (Rules(max_per_category=1), "max_per_category"),
                         (Rules(min_price=1), "min_price"), (Rules(boosts=(Boost(categories=("x",)),)),
                                                             "boosts[0].categories")]:
        with pytest.raises(RulesError) as e:
            ItemRules.compile(rules, bare)
        assert e.value.field == field


def test_merged_combines_filters_boosts_caps_and_pins():
    server = ItemRules(allowed=np.array([True, True, False, True]), bonus=np.array([1, 0, 0, 0], np.float32),
                       pins=((0, 0), (1, 4)), cap=3, groups=np.zeros(4, np.int32))
    request = ItemRules(allowed=np.array([True, False, True, True]), bonus=np.array([0, 2, 0, 0], np.float32),
                        pins=((3, 0),), cap=5, widen=2)
    m = server.merged(request)
    assert m.allowed.tolist() == [True, False, False, True] and m.bonus.tolist() == [1, 2, 0, 0]
    assert m.pins == ((3, 0), (1, 4)) and m.cap == 3 and m.widen == 2 and m.groups is not None
    assert ItemRules().merged(ItemRules()).allowed is None


# --- the rank steps ---------------------------------------------------------------------------------
def union_of(users: list[int], items: list[int]) -> CandidateUnion:
    n = len(items)
    return CandidateUnion(np.array(users, np.int64), np.array(items, np.int64), np.ones((1, n), np.int32),
                          np.ones((1, n), np.float32), ("s",))


def test_within_cap_counts_each_key_and_group_in_order():
    keys = np.array([0, 0, 0, 0, 1, 1, 1])
    groups = np.array([5, 5, -1, 5, 5, 7, 5])
    assert within_cap(keys, groups, 2).tolist() == [True, True, True, False, True, True, True]
    assert within_cap(keys, groups, 1).tolist() == [True, False, True, False, True, True, False]
    assert within_cap(np.zeros(0, np.int64), np.zeros(0, np.int32), 1).tolist() == []


def test_keep_applies_filters_then_the_cap_in_boosted_score_order():
    union = union_of([0, 0, 0, 0, 1, 1], [0, 1, 3, 4, 1, 3])
    rules = ItemRules(allowed=np.array([True, True, True, True, False]), cap=1, groups=catalogue().groups)
    scores = rules.boost(union.items, np.array([4, 3, 2, 1, 1, 2], np.float32))
    # user 0: a4 filtered; a0 (books) kept; a1 and a3 share "music": only the better (a1) kept
    # user 1: a3 scores above a1 in the same group: a3 kept
    assert rules.keep(union, scores).tolist() == [True, True, False, False, False, True]
    boosted = ItemRules(bonus=np.array([0, 0, 0, 5, 0], np.float32), cap=1, groups=catalogue().groups)
    scores = boosted.boost(union.items, np.array([4, 3, 2, 1, 1, 2], np.float32))
    assert scores.tolist() == [4, 3, 7, 1, 1, 7]
    assert boosted.keep(union, scores).tolist() == [True, False, True, True, False, True]
    assert ItemRules().keep(union, scores) is None


def lists(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = np.array(rows, np.int64)
    scores = np.where(items >= 0, 10.0 - np.arange(items.shape[1]), np.nan).astype(np.float32)
    return items, scores, np.where(items >= 0, np.arange(items.size).reshape(items.shape), -1)


def test_top_up_stays_within_the_filters_and_the_cap():
    groups = np.array([0, 0, 1, 0, 2, 1, -1], np.int32)
    ranking = np.array([1, 3, 2, 5, 6, 4, 0])
    rules = ItemRules(allowed=np.array([True, True, True, True, True, True, False]), cap=1, groups=groups)
    items, scores, rows = rules.top_up(lists([[0, -1, -1, -1], [2, 4, -1, -1]]), ranking, 7, None)
    # row 0 holds group 0: 1 and 3 refused, 2 (g1) taken, 5 (g1) refused, 6 filtered out, 4 (g2) taken
    assert items.tolist() == [[0, 2, 4, -1], [2, 4, 1, -1]]
    assert np.isnan(scores[0, 1:]).all() and rows[0].tolist() == [0, -1, -1, -1]
    seen = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 0, 0], [0] * 7]))
    items, _, _ = rules.top_up(lists([[0, -1, -1, -1], [-1, -1, -1, -1]]), ranking, 7, seen)
    assert items.tolist() == [[0, 5, 4, -1], [1, 2, 4, -1]]
    plain = ItemRules(allowed=np.array([False, True, True, True, True, True, True]))
    assert plain.top_up(lists([[-1, -1, -1]]), ranking, 7, None)[0].tolist() == [[1, 3, 2]]


def test_pins_take_their_positions_and_push_the_rest_down():
    rules = ItemRules(pins=((9, 0), (7, 2)))
    items, scores, rows = rules.pin(lists([[5, 6, 7, 8], [7, 5, -1, -1]]), None)
    assert items.tolist() == [[9, 5, 7, 6], [9, 5, 7, -1]]
    # 7 keeps its own score and union row; 9 was not in the list: NaN and -1
    assert scores[0, 2] == 8.0 and rows[0, 2] == 2 and np.isnan(scores[0, 0]) and rows[0, 0] == -1
    seen = sp.csr_matrix(np.eye(1, 10, 9))  # user 0 has seen item 9: that pin is skipped for them
    assert rules.pin(lists([[5, 6, 7, 8]]), seen)[0].tolist() == [[5, 6, 7, 8]]
    unavailable = ItemRules(pins=((9, 0), (7, 2)), allowed=np.arange(10) != 7)
    assert unavailable.pin(lists([[5, 6, 8, 4]]), None)[0].tolist() == [[9, 5, 6, 8]]
    far = ItemRules(pins=((9, 3),))
    assert far.pin(lists([[5, -1, -1, -1]]), None)[0].tolist() == [[5, 9, -1, -1]]
    assert ItemRules(pins=((9, 7),)).pin(lists([[5, 6]]), None)[0].tolist() == [[5, 6]]


def test_compact_moves_kept_entries_left():
    items, scores, rows = compact(lists([[1, 2, 3, 4]]), np.array([[False, True, False, True]]), 3)
    assert items.tolist() == [[2, 4, -1]] and scores[0, :2].tolist() == [9.0, 7.0] and rows.tolist() == [[1, 3, -1]]
