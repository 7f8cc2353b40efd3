"""Tracking settings: where runs go (flag, environment, config, default) and what is checked before a fit."""

from __future__ import annotations

import pytest

from shortlist.config import DEFAULTS, load_config
from shortlist.errors import ConfigError
from shortlist.tracking.config import DEFAULT_URI, TrackingSettings, resolve_uri, tracking_settings

SECTION = DEFAULTS["tracking"]


def test_uri_flag_then_environment_then_config_then_sqlite_here() -> None:
    env = {"MLFLOW_TRACKING_URI": "http://env:5000"}
    assert resolve_uri("http://flag:5000", "sqlite:///conf.db", env) == "http://flag:5000"
    assert resolve_uri(None, "sqlite:///conf.db", env) == "http://env:5000"
    assert resolve_uri(None, "sqlite:///conf.db", {}) == "sqlite:///conf.db"
    assert resolve_uri("  ", "", {"MLFLOW_TRACKING_URI": " "}) == DEFAULT_URI == "sqlite:///mlruns.db"


def test_tracking_is_off_unless_asked() -> None:
    assert tracking_settings(SECTION, track=None, uri=None, env={}) is None
    assert tracking_settings(SECTION, track=False, uri="http://x:1", env={}) is None
    on = tracking_settings({**SECTION, "enabled": True, "experiment": "retail"}, track=None, uri=None, env={})
    assert on == TrackingSettings(DEFAULT_URI, "retail", None, None)
    assert tracking_settings({**SECTION, "enabled": True}, track=False, uri=None, env={}) is None


def test_a_registry_name_or_a_uri_turns_tracking_on() -> None:
    registered = tracking_settings(SECTION, track=None, uri=None, register="shortlist", alias="champion",
                                   env={"MLFLOW_TRACKING_URI": "http://env:5000"})
    assert registered == TrackingSettings("http://env:5000", "shortlist", "shortlist", "champion")
    by_uri = tracking_settings(SECTION, track=None, uri="sqlite:///x.db", experiment="e", env={})
    assert by_uri == TrackingSettings("sqlite:///x.db", "e", None, None)
    from_config = tracking_settings({**SECTION, "register": "reco", "alias": "prod"}, track=True, uri=None, env={})
    assert from_config is not None and (from_config.register, from_config.alias) == ("reco", "prod")
    # a name in the config alone neither turns tracking on nor stops --no-track
    assert tracking_settings({**SECTION, "register": "reco"}, track=None, uri=None, env={}) is None
    assert tracking_settings({**SECTION, "register": "reco"}, track=False, uri=None, env={}) is None


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"track": None, "alias": "champion"}, "alias 'champion' needs a registered model name"),
    ({"track": False, "register": "shortlist"}, "needs tracking: drop --no-track"),
    ({"track": True, "register": "a/b"}, "contain no '/' or ':'"),
    ({"track": True, "register": "  "}, "must be non-empty"),
    ({"track": True, "register": "m", "alias": "latest"}, "'latest' and version-like"),
    ({"track": True, "register": "m", "alias": "v3"}, "reserved"),
    ({"track": True, "register": "m", "alias": "has space"}, "letters, digits"),
    ({"track": True, "experiment": " "}, "experiment name is empty"),
])
def test_bad_names_are_refused_before_any_work(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        tracking_settings(SECTION, uri=None, env={}, **kwargs)  # type: ignore[arg-type]


def test_the_documented_config_file_spells_out_the_defaults() -> None:
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "two_stage.toml")
    assert cfg["tracking"] == DEFAULTS["tracking"]
    with pytest.raises(ConfigError, match="tracking: unknown key 'uri_'"):
        from shortlist.config import merge

        merge(DEFAULTS, {"tracking": {"uri_": "x"}})
