"""Unit tests of the service's parts: drift monitor, caches, event store, settings, history codec."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shortlist.errors import ConfigError
from shortlist.serving.cache import MemoryCache
from shortlist.serving.drift import DriftMonitor
from shortlist.serving.histories_redis import decode, encode
from shortlist.serving.settings import ServingSettings
from shortlist.serving.store import Event, MemoryEventStore


def test_psi_is_zero_for_the_reference_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20_000, 2))
    mon = DriftMonitor(["a", "b"], ref, min_rows=1_000)
    assert mon.report()["serving_rows"] == 0 and np.all(mon.psi() == 0)
    mon.observe(np.column_stack([rng.normal(size=5_000), rng.normal(loc=2.0, size=5_000)]))
    psi = mon.psi()
    assert psi[0] < 0.02 and psi[1] > 1.0
    assert mon.report()["drifted"] == ["b"] and mon.report()["enough_data"] is True


def test_psi_needs_enough_rows_before_flagging():
    mon = DriftMonitor(["a"], np.arange(1000, dtype=float)[:, None], min_rows=500)
    mon.observe(np.full((100, 1), 5000.0))
    assert mon.psi()[0] > 1.0 and mon.report()["drifted"] == [] and mon.report()["enough_data"] is False


def test_missing_values_have_their_own_bin_and_constant_features_work():
    ref = np.column_stack([np.r_[np.arange(900.0), np.full(100, np.nan)], np.ones(1000)])
    mon = DriftMonitor(["x", "const"], ref, n_bins=10, min_rows=1)
    assert mon.ref_counts[0, -1] == 100 and mon.ref_counts[1].sum() == 1000 and mon.ref_counts[1].max() == 1000
    mon.observe(np.column_stack([np.full(50, np.nan), np.ones(50)]))
    assert mon.counts[0, -1] == 50 and mon.psi()[1] == pytest.approx(0.0)
    assert mon.psi()[0] > 1.0  # all missing now: drifted


def test_memory_cache_ttl_lru_and_invalidation():
    cache = MemoryCache(ttl_s=0.05, max_users=2)
    cache.set("v1", "u1", "k=10", b"a")
    assert cache.get("v1", "u1", "k=10") == b"a" and cache.get("v2", "u1", "k=10") is None
    assert cache.get("v1", "u1", "k=5") is None
    time.sleep(0.06)
    assert cache.get("v1", "u1", "k=10") is None  # expired
    for u in ("u1", "u2", "u3"):
        cache.set("v1", u, "o", u.encode())
    assert cache.get("v1", "u1", "o") is None and cache.get("v1", "u3", "o") == b"u3"  # LRU dropped u1
    cache.invalidate("u3")
    assert cache.get("v1", "u3", "o") is None and cache.get("v1", "u2", "o") == b"u2"


def test_event_store_keeps_the_newest_events():
    store = MemoryEventStore(max_events=3)
    for t in range(5):
        n, durable = store.append("u", Event(item_id=f"i{t}", timestamp=t, event="view"))
    assert (n, durable) == (3, True)
    events, ok = store.events("u")
    assert ok and [e.item_id for e in events] == ["i2", "i3", "i4"] and store.events("other") == ([], True)
    small = MemoryEventStore(max_events=2, max_users=2)
    for u in ("a", "b", "a", "c"):
        small.append(u, Event(item_id="i", timestamp=1, event="view"))
    assert small.events("b") == ([], True) and len(small.events("a")[0]) == 2 and small.evicted_users == 1
    e = Event(item_id="a\tb", timestamp=7, event="cart")
    assert Event.decode(e.encode()) == e


def test_history_codec_round_trips_and_refuses_other_arrays():
    from shortlist.features.profile import UserHistory

    h = UserHistory(np.array([3, 1, 2]), np.array([10, 20, 1_323_000_000]), np.array([1.25, np.nan, 3.0]),
                    np.array([7, 7, 9]))
    got = decode(encode(h))
    assert np.array_equal(got.items, h.items) and np.array_equal(got.timestamps, h.timestamps)
    assert np.array_equal(got.prices, h.prices, equal_nan=True) and np.array_equal(got.baskets, h.baskets)
    assert decode(encode(UserHistory(h.items, h.timestamps))).baskets is None
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"float64 \(4, n\)"):
        decode(buf.getvalue())


@pytest.mark.parametrize("kwargs", [{"max_k": 0}, {"cache_ttl_s": 0}, {"max_body_bytes": 10}, {"redis_url": "http://x"},
                                    {"max_candidates": 0}])
def test_bad_settings_are_config_errors(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        ServingSettings(model_dir=tmp_path, **kwargs)
