"""The web page at ``GET /`` in a real headless Chromium (Debian's), driven by playwright, against the real app.

Skips cleanly where there is no Chromium binary, no playwright, or no serving extra. Never downloads a
browser: playwright only drives the system binary.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for p in (os.environ.get("SHORTLIST_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                             shutil.which("chromium-browser")) if p and Path(p).is_file()), None)
if CHROMIUM is None:
    pytest.skip("no Chromium binary (install Debian's `chromium` package)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
serving_app = pytest.importorskip("shortlist.serving.app", reason="the serving app is not available")

from shortlist.data.split import leave_last_out  # noqa: E402
from shortlist.data.synthetic import make_synthetic  # noqa: E402
from shortlist.pipeline.two_stage import TwoStageRecommender  # noqa: E402
from shortlist.serving.loadtest import free_port  # noqa: E402
from shortlist.serving.settings import ServingSettings  # noqa: E402

# The flags that keep Chromium quiet on a machine with no outside network (see docs/serving.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    ds = make_synthetic(n_users=200, n_items=100, n_interactions=6000, repeat_share=0.0, seed=7)
    train = leave_last_out(ds.interactions).train
    model = TwoStageRecommender(sources=["transition", "itemknn", "covisit", "popular"], n_windows=2, seed=1)
    model.fit(train, items=ds.items)
    assert model.ranker_ is not None  # contributions need a trained ranker
    out = tmp_path_factory.mktemp("page") / "model"
    model.save(out)
    return out


@pytest.fixture(scope="module")
def base_url(model_dir) -> Iterator[str]:
    app = serving_app.create_app(ServingSettings(model_dir=model_dir, host="127.0.0.1"))  # loopback: writes allowed
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if server.started and httpx.get(url + "/ready", timeout=2).json().get("ready") is True:
                break
        except (httpx.HTTPError, ValueError):
            pass
        assert time.monotonic() < deadline, "the service did not become ready"
        assert thread.is_alive(), "the service thread died"
        time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(15)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        # A fresh, empty profile per run (launch_persistent_context takes the user-data-dir explicitly).
        profile = tmp_path_factory.mktemp("chromium-profile")
        ctx = pw.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                    args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture()
def page(browser, base_url) -> Iterator[Any]:
    pg = browser.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    outside: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("request", lambda r: None if r.url.startswith((base_url, "data:")) else outside.append(r.url))
    pg.goto(base_url + "/")
    pg.wait_for_function("document.querySelectorAll('#user-select option').length > 1")
    yield pg
    pg.close()
    assert problems == [], problems
    assert outside == [], f"the page loaded something from outside the service: {outside}"


def _rec_ids(pg: Any) -> list[str]:
    return pg.eval_on_selector_all("[data-testid=rec]", "els => els.map(e => e.dataset.itemId)")


def _go(pg: Any, user: str, k: str) -> None:
    pg.fill("#k-input", k)
    pg.fill("#user-input", user)
    pg.click("#go-user")


def test_known_user_history_and_explained_recommendations(page, base_url):
    users = httpx.get(base_url + "/users", params={"limit": 200}).json()["users"]
    page.select_option("#user-select", index=1)  # the first (most active) user
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 10")
    page.wait_for_selector("#history li")
    user = users[0]

    # The page shows exactly what the API answers, in order.
    api = httpx.post(base_url + "/recommend", json={"user_id": user, "k": 10, "explain": True}).json()
    assert _rec_ids(page) == [str(it["item_id"]) for it in api["items"]]
    first = page.locator("[data-testid=rec]").first
    assert first.locator(".rank").inner_text() == "#1"
    assert first.locator(".title").inner_text() == (api["items"][0]["title"] or str(api["items"][0]["item_id"]))

    # Sources as chips with their scores, and the top per-feature contributions, on every card.
    for card, item in zip(page.locator("[data-testid=rec]").all(), api["items"], strict=True):
        chips = card.locator(".source-chip")
        assert chips.count() == len(item["sources"]) >= 1
        assert sorted(chips.evaluate_all("els => els.map(e => e.dataset.source)")) == sorted(item["sources"])
        assert card.locator(".contrib").count() == len(item["contributions"]) >= 1
        assert item["contributions"][0]["feature"] in card.locator("[data-testid=contributions]").inner_text()

    # History: titles, newest first, as the API has them.
    hist = httpx.get(f"{base_url}/users/{user}/history", params={"n": 20}).json()
    assert hist["known"] is True and hist["items"]
    rows = page.locator("#history li")
    assert rows.count() == len(hist["items"])
    assert rows.first.get_attribute("data-item-id") == str(hist["items"][0]["item_id"])
    assert (hist["items"][0]["title"] or "") in rows.first.inner_text()

    assert page.inner_text("[data-testid=latency]").endswith("ms")
    assert page.inner_text("[data-testid=cache-hit]") in {"hit", "miss"}
    assert int(page.inner_text("[data-testid=n-candidates]")) >= 10
    assert page.inner_text("[data-testid=fallback-value]") == "none"
    assert page.locator("#fallback").is_hidden() and page.locator("#error").is_hidden()
    assert page.inner_text("[data-testid=ready]") in {"ready", "degraded"}

    # A smaller k, typed as a string id: five cards.
    _go(page, str(user), "5")
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 5")


def test_unknown_user_shows_the_fallback_banner(page):
    _go(page, "no-such-user-42", "7")
    page.wait_for_selector("#fallback:not(.hidden)")
    assert "unknown_user" in page.inner_text("#fallback")
    assert page.inner_text("[data-testid=fallback-value]") == "unknown_user"
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 7")
    page.wait_for_function("document.getElementById('history-note').textContent.startsWith('Unknown user')")
    assert page.locator("#error").is_hidden()


@pytest.mark.parametrize("k", ["0", "-3", "100000", "2.5"])
def test_bad_k_shows_the_validation_error(page, k):
    users = page.eval_on_selector_all("#user-select option", "els => els.map(e => e.textContent)")
    _go(page, users[1], k)
    page.wait_for_selector("#error:not(.hidden)")
    text = page.inner_text("#error")
    assert "422" in text and "k" in text.splitlines()[-1]
    assert _rec_ids(page) == []
    assert page.locator("#fallback").is_hidden()
    # Fixing k clears the error.
    _go(page, users[1], "3")
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 3")
    assert page.locator("#error").is_hidden()


def test_session_mode_recommends_from_typed_items(page, base_url):
    user = httpx.get(base_url + "/users", params={"limit": 1}).json()["users"][0]
    seen = [it["item_id"] for it in httpx.get(f"{base_url}/users/{user}/history", params={"n": 3}).json()["items"]]
    page.click("#tab-session")
    for item in seen:
        page.fill("#session-input", str(item))
        page.press("#session-input", "Enter")
    assert page.locator("#session-items .chip").count() == len(seen)
    page.fill("#k-input", "4")
    page.click("#go-session")
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 4")
    assert "session of" in page.inner_text("#recs-who")
    assert page.locator("#error").is_hidden()
    api = httpx.post(base_url + "/recommend/session", json={"items": [str(s) for s in seen], "k": 4}).json()
    assert _rec_ids(page) == [str(it["item_id"]) for it in api["items"]]


def test_empty_session_and_empty_user_are_reported_without_a_request(page):
    page.click("#tab-session")
    page.click("#go-session")
    page.wait_for_selector("#error:not(.hidden)")
    assert "add at least one item" in page.inner_text("#error")
    page.click("#tab-user")
    _go(page, "", "10")
    assert "choose or type a user id" in page.inner_text("#error")


def test_recording_a_click_updates_history(page, base_url):
    user = httpx.get(base_url + "/users", params={"limit": 200}).json()["users"][-1]  # not used by other tests
    _go(page, str(user), "5")
    page.wait_for_function("document.querySelectorAll('[data-testid=rec]').length === 5")
    page.wait_for_selector("#history li")
    first = page.locator("[data-testid=rec]").first
    item = first.get_attribute("data-item-id")
    first.locator("[data-testid=record-click]").click()
    page.wait_for_function(f"document.querySelector('#history li')?.dataset.itemId === {item!r}")
    assert "new" in page.locator("#history li").first.inner_text()
    hist = httpx.get(f"{base_url}/users/{user}/history", params={"n": 1}).json()
    assert str(hist["items"][0]["item_id"]) == item
    assert page.locator("#error").is_hidden()
