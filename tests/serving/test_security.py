"""API keys, the loopback rule and the write rate limit: who may call what."""

from __future__ import annotations

import os
import stat

import pytest
from fastapi.testclient import TestClient

from shortlist.errors import ConfigError
from shortlist.serving.app import create_app
from shortlist.serving.security import TokenBucket
from shortlist.serving.settings import ServingSettings, is_loopback

KEY, OTHER = "k" * 24, "o" * 24


@pytest.fixture(scope="module")
def item_and_user(fitted):
    model = fitted[1]
    return model.history_.items.ids[0], model.history_.users.ids[0]


def calls(c: TestClient, item: str, user: str, headers: dict[str, str] | None = None) -> dict[str, int]:
    """The status of one call of each kind: write, admin, read, metrics (a read), probes (public)."""
    h = headers or {}
    return {"write": c.post("/events", json={"user_id": user, "item_id": item}, headers=h).status_code,
            "admin": c.post("/admin/reload", headers=h).status_code,
            "read": c.post("/recommend", json={"user_id": user, "k": 3}, headers=h).status_code,
            "metrics": c.get("/metrics", headers=h).status_code,
            "probes": max(c.get("/health", headers=h).status_code, c.get("/ready", headers=h).status_code)}


@pytest.mark.parametrize(("settings", "headers", "expected"), [
    # no key: writes and admin refused unless the service is bound to loopback
    ({}, None, {"write": 403, "admin": 403, "read": 200, "metrics": 200, "probes": 200}),
    ({"host": "0.0.0.0"}, None, {"write": 403, "admin": 403, "read": 200, "metrics": 200, "probes": 200}),
    ({"host": "127.0.0.1"}, None, {"write": 200, "admin": 200, "read": 200, "metrics": 200, "probes": 200}),
    # a key: writes and admin need it, even on loopback; reads stay open
    ({"api_keys": (KEY,), "host": "127.0.0.1"}, None,
     {"write": 401, "admin": 401, "read": 200, "metrics": 200, "probes": 200}),
    ({"api_keys": (KEY,)}, {"Authorization": f"Bearer {OTHER}"},
     {"write": 401, "admin": 401, "read": 200, "metrics": 200, "probes": 200}),
    ({"api_keys": (KEY,)}, {"Authorization": f"Bearer {KEY}"},
     {"write": 200, "admin": 200, "read": 200, "metrics": 200, "probes": 200}),
    ({"api_keys": (OTHER, KEY)}, {"Authorization": f"bearer  {KEY} "},
     {"write": 200, "admin": 200, "read": 200, "metrics": 200, "probes": 200}),
    ({"api_keys": (KEY,)}, {"Authorization": f"Basic {KEY}"},
     {"write": 401, "admin": 401, "read": 200, "metrics": 200, "probes": 200}),
    # keys for reads too: only the probes stay open
    ({"api_keys": (KEY,), "require_key_for_reads": True}, None,
     {"write": 401, "admin": 401, "read": 401, "metrics": 401, "probes": 200}),
    ({"api_keys": (KEY,), "require_key_for_reads": True}, {"Authorization": f"Bearer {KEY}"},
     {"write": 200, "admin": 200, "read": 200, "metrics": 200, "probes": 200}),
])
def test_the_401_403_200_matrix(model_dir, item_and_user, settings, headers, expected):
    with TestClient(create_app(ServingSettings(model_dir=model_dir, **settings))) as c:
        assert calls(c, *item_and_user, headers) == expected


def test_refusals_say_why_and_how(model_dir, item_and_user):
    item, user = item_and_user
    with TestClient(create_app(ServingSettings(model_dir=model_dir, api_keys=(KEY,)))) as c:
        missing = c.post("/events", json={"user_id": user, "item_id": item})
        assert missing.headers["www-authenticate"] == 'Bearer realm="shortlist"'
        assert "Authorization: Bearer KEY" in missing.json()["detail"]
        wrong = c.post("/admin/reload", headers={"Authorization": f"Bearer {OTHER}"})
        assert wrong.headers["www-authenticate"] == 'Bearer realm="shortlist", error="invalid_token"'
        assert KEY not in wrong.text and OTHER not in wrong.text
    with TestClient(create_app(ServingSettings(model_dir=model_dir, host="10.1.2.3"))) as c:
        r = c.post("/events", json={"user_id": user, "item_id": item})
        assert r.status_code == 403 and "--api-key-file" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]


def test_writes_are_rate_limited_per_client(model_dir, item_and_user):
    item, user = item_and_user
    settings = ServingSettings(model_dir=model_dir, api_keys=(KEY, OTHER), write_rate_per_s=0.01, write_burst=2)
    with TestClient(create_app(settings)) as c:
        event = {"user_id": user, "item_id": item}
        mine, theirs = {"Authorization": f"Bearer {KEY}"}, {"Authorization": f"Bearer {OTHER}"}
        assert [c.post("/events", json=event, headers=mine).status_code for _ in range(3)] == [200, 200, 429]
        limited = c.post("/events", json=event, headers=mine)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 60
        assert c.post("/events", json=event, headers=theirs).status_code == 200  # another client, its own bucket
        assert c.post("/recommend", json={"user_id": user}, headers=mine).status_code == 200  # reads: no limit
        assert c.post("/admin/reload", headers=mine).status_code == 200  # admin: no write limit
        assert 'status="429"' in c.get("/metrics").text


def test_token_bucket_refills_at_its_rate_and_forgets_old_clients():
    bucket = TokenBucket(2.0, 3, max_clients=2)
    assert [bucket.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a", now=0.0) == pytest.approx(0.5)  # one token back after 0.5 s at 2/s
    assert bucket.take("a", now=0.5) == 0.0 and bucket.take("a", now=0.5) == pytest.approx(0.5)
    assert bucket.take("a", now=100.0) == 0.0  # refilled, capped at the burst
    assert [bucket.take("a", now=100.0) for _ in range(3)][-1] == pytest.approx(0.5)
    bucket.take("b", now=100.0)
    bucket.take("c", now=100.0)  # a third client: the least recently seen (a) is forgotten
    assert bucket.take("a", now=100.0) == 0.0
    assert TokenBucket(0.0, 1).take("x") == 0.0  # rate 0: no limit


def test_keys_are_checked_and_never_shown():
    s = ServingSettings(model_dir=".", api_keys=(KEY,))
    assert KEY not in repr(s)
    for bad in ("short", "with a space in it ok?", "ключ" * 8):
        with pytest.raises(ConfigError, match="not usable"):
            ServingSettings(model_dir=".", api_keys=(bad,))
    with pytest.raises(ConfigError, match="--require-key-for-reads needs an API key"):
        ServingSettings(model_dir=".", require_key_for_reads=True)
    with pytest.raises(ConfigError, match="write_rate_per_s"):
        ServingSettings(model_dir=".", write_rate_per_s=-1)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True),
                                                ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                                ("::", False), ("192.168.1.4", False), ("example.org", False),
                                                (None, False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_cli_reads_keys_from_a_file_and_the_environment(tmp_path, monkeypatch, capsys):
    from shortlist.cli._serve_opts import read_api_keys

    path = tmp_path / "keys"
    path.write_text(f"# the shop's backend\n{KEY}\n\n  {OTHER}  \n{KEY}\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    monkeypatch.delenv("SHORTLIST_API_KEY", raising=False)
    assert read_api_keys(path) == (KEY, OTHER)
    monkeypatch.setenv("SHORTLIST_API_KEY", "e" * 20)
    assert read_api_keys(None) == ("e" * 20,)
    assert read_api_keys(path) == (KEY, OTHER, "e" * 20)
    os.chmod(path, 0o644)
    read_api_keys(path)
    assert "readable by other users" in capsys.readouterr().err
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no key"):
        read_api_keys(tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot read it"):
        read_api_keys(tmp_path / "missing")
