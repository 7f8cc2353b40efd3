"""Failure behaviour under load, against a real uvicorn server and a real Redis server.

Each Redis test starts its own ``redis-server`` on a free loopback port (so it can be stopped
mid-run without touching anyone else's) and skips cleanly where the binary is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from shortlist.serving.app import create_app  # noqa: E402
from shortlist.serving.loadtest import free_port, run_bench  # noqa: E402
from shortlist.serving.settings import ServingSettings  # noqa: E402

REDIS = shutil.which("redis-server")
# Keys on, for reads too: the failure tests run as a secured production service would.
KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECURED = {"api_keys": (KEY,), "require_key_for_reads": True}
needs_redis = pytest.mark.skipif(REDIS is None, reason="no redis-server binary (install Debian's redis-server)")


class RedisProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None
        self.proc = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=0.2).ping():
                    return
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture()
def redis_proc() -> Iterator[RedisProcess]:
    r = RedisProcess()
    r.start()
    yield r
    r.stop()


class Server:
    """The real app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: ServingSettings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the service did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _users(model_dir: Path, n: int = 40) -> list[str]:
    with TestClient(create_app(ServingSettings(model_dir=model_dir))) as c:
        return c.get(f"/users?limit={n}").json()["users"]


@needs_redis
def test_redis_cache_and_events_are_shared_by_replicas(model_dir, redis_proc):
    settings = ServingSettings(model_dir=model_dir, redis_url=redis_proc.url, **SECURED)
    user = _users(model_dir, 1)[0]
    with TestClient(create_app(settings), headers=AUTH) as a, TestClient(create_app(settings), headers=AUTH) as b:
        first = a.post("/recommend", json={"user_id": user, "k": 5}).json()
        assert first["cache_hit"] is False
        assert b.post("/recommend", json={"user_id": user, "k": 5}).json()["cache_hit"] is True  # other replica
        item = first["items"][0]["item_id"]
        assert a.post("/events", json={"user_id": user, "item_id": item}).json()["degraded"] == []
        after = b.post("/recommend", json={"user_id": user, "k": 5}).json()  # sees a's event, cache dropped
        assert after["cache_hit"] is False and item not in [r["item_id"] for r in after["items"]]
        hist = b.get(f"/users/{user}/history?n=1").json()["items"][0]
        assert hist["item_id"] == item and hist["online"] is True
        assert a.get("/ready").json()["degraded"] == [] and 'shortlist_redis_up{variant="all"} 1.0' in a.get("/metrics").text


@needs_redis
def test_redis_stopped_during_a_load_run_fails_no_request(model_dir, redis_proc):
    users = _users(model_dir)
    settings = ServingSettings(model_dir=model_dir, redis_url=redis_proc.url, redis_retry_s=0.5, **SECURED)
    with Server(settings) as srv:
        assert httpx.get(srv.url + "/ready").status_code == 200  # probes need no key
        assert httpx.post(srv.url + "/recommend", json={"user_id": users[0]}).status_code == 401
        killer = threading.Timer(0.7, redis_proc.stop)
        killer.start()
        result = run_bench(srv.url, users=users, n_requests=600, concurrency=8, use_cache=True, duration_cap_s=60,
                           headers=AUTH)
        killer.join()
        assert redis_proc.proc is None, "Redis was not stopped during the run"
        assert result.n == 600 and result.errors == 0, result.error_samples
        assert result.status_counts == {200: 600}
        ready = httpx.get(srv.url + "/ready").json()
        assert ready["ready"] is True and ready["degraded"] == ["redis"]
        # Events while Redis is down are kept on this replica and flagged.
        http = httpx.Client(base_url=srv.url, headers=AUTH)
        item = http.post("/recommend", json={"user_id": users[0], "k": 1}).json()["items"][0]["item_id"]
        r = http.post("/events", json={"user_id": users[0], "item_id": item}).json()
        assert r["ok"] is True and r["degraded"] == ["redis"]
        after = http.post("/recommend", json={"user_id": users[0], "k": 5}).json()
        assert item not in [x["item_id"] for x in after["items"]] and "feature_store_unavailable" in after["fallback"]
        assert 'shortlist_redis_up{variant="all"} 0.0' in http.get("/metrics").text
        redis_proc.start()  # back: the breaker lets a probe through after retry_s
        time.sleep(0.6)
        assert httpx.get(srv.url + "/ready").json()["degraded"] == []


def test_unreachable_redis_from_the_start_serves_everything(model_dir):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    user = _users(model_dir, 1)[0]
    with TestClient(create_app(ServingSettings(model_dir=model_dir, redis_url=dead))) as c:
        for _ in range(3):
            r = c.post("/recommend", json={"user_id": user, "k": 5})
            assert r.status_code == 200 and r.json()["cache_hit"] is False and len(r.json()["items"]) == 5
        assert c.get("/ready").json()["degraded"] == ["redis"]


def test_model_reloaded_during_a_load_run_fails_no_request(tmp_path, model_dir, fit_model):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    users = _users(model_dir)
    with Server(ServingSettings(model_dir=live, **SECURED)) as srv:
        old = httpx.get(srv.url + "/model/info", headers=AUTH).json()["model_version"]
        fit_model(tmp_path / "next", seed=2, sources=["itemknn", "covisit", "popular"])
        outcome: dict[str, object] = {}

        def swap() -> None:
            time.sleep(0.3)
            shutil.rmtree(live)
            shutil.copytree(tmp_path / "next", live)
            outcome["refused"] = httpx.post(srv.url + "/admin/reload", timeout=120).status_code
            outcome["reload"] = httpx.post(srv.url + "/admin/reload", timeout=120, headers=AUTH).json()

        t = threading.Thread(target=swap)
        t.start()
        result = run_bench(srv.url, users=users, n_requests=800, concurrency=8, duration_cap_s=90, headers=AUTH)
        t.join()
        assert result.errors == 0 and result.status_counts == {200: 800}, result.error_samples
        assert outcome["refused"] == 401
        reload = outcome["reload"]
        assert isinstance(reload, dict) and reload["reloaded"] is True and reload["previous_version"] == old
        info = httpx.get(srv.url + "/model/info", headers=AUTH).json()
        assert info["model_version"] == reload["model_version"] != old
        assert info["sources"] == ["itemknn", "covisit", "popular"]


def test_a_broken_model_on_reload_keeps_the_old_one(tmp_path, model_dir):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    with TestClient(create_app(ServingSettings(model_dir=live, api_keys=(KEY,))), headers=AUTH) as c:
        user = c.get("/users?limit=1").json()["users"][0]
        (live / "ranker.txt").write_text("corrupted")  # checksum no longer matches the manifest
        r = c.post("/admin/reload")
        assert r.status_code == 500 and "still serving" in r.json()["detail"]
        assert c.post("/recommend", json={"user_id": user, "k": 3}).status_code == 200
        assert c.get("/ready").json()["degraded"] == ["model_reload"]
        assert 'shortlist_model_reloads_total{result="failed",variant="default"} 1.0' in c.get("/metrics").text


def test_watching_the_model_directory_reloads(tmp_path, model_dir, fit_model):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    fit_model(tmp_path / "next", seed=3, sources=["itemknn", "popular"])
    with TestClient(create_app(ServingSettings(model_dir=live, watch_s=0.1))) as c:
        old = c.get("/model/info").json()["model_version"]
        shutil.rmtree(live)
        shutil.copytree(tmp_path / "next", live)
        deadline = time.monotonic() + 60
        while c.get("/model/info").json()["model_version"] == old:
            assert time.monotonic() < deadline, "the watcher never reloaded"
            time.sleep(0.1)
        assert c.get("/model/info").json()["sources"] == ["itemknn", "popular"]


@needs_redis
def test_pushed_histories_are_served_from_redis(model_dir, redis_proc):
    import redis
    from typer.testing import CliRunner

    from shortlist.cli import app as cli

    result = CliRunner().invoke(cli, ["features", "push", "--model", str(model_dir), "--redis-url", redis_proc.url])
    assert result.exit_code == 0, result.output
    client = redis.Redis.from_url(redis_proc.url)
    settings = ServingSettings(model_dir=model_dir, redis_url=redis_proc.url)
    with TestClient(create_app(settings)) as c, TestClient(create_app(ServingSettings(model_dir=model_dir))) as local:
        version = c.get("/model/info").json()["model_version"]
        users = c.get("/users?limit=2").json()["users"]
        assert int(client.get(f"shortlist:history:{version}:__complete__")) == 200
        assert c.get(f"/users/{users[0]}/history?n=50").json() == local.get(f"/users/{users[0]}/history?n=50").json()
        # Features from the Redis-held history equal those from the model's own copy: same answer.
        ask = {"user_id": users[0], "k": 10, "use_cache": False}
        remote, mine = c.post("/recommend", json=ask).json(), local.post("/recommend", json=ask).json()
        assert remote["items"] == mine["items"] and remote["fallback"] is None
        client.delete(f"shortlist:history:{version}:{users[1]}")  # the store, not the model dir, is read
        assert c.get(f"/users/{users[1]}/history").json()["items"] == []
        assert local.get(f"/users/{users[1]}/history").json()["items"]


def test_push_refuses_an_unreachable_redis(model_dir):
    from typer.testing import CliRunner

    from shortlist.cli import app as cli

    dead = f"redis://127.0.0.1:{free_port()}/0"
    result = CliRunner().invoke(cli, ["features", "push", "--model", str(model_dir), "--redis-url", dead])
    assert result.exit_code != 0 and "cannot reach Redis" in str(result.exception)
