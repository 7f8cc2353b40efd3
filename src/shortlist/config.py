"""Every default in one place: :class:`TwoStageConfig` for the model, and the TOML file that overrides it.

A field left ``None`` is chosen from the data by :func:`derive`, the one function that does so.
In a TOML file, unknown sections or keys and values of the wrong type are errors that name the key.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from shortlist.data.events import check_event_weights, event_types
from shortlist.errors import ConfigError
from shortlist.schema import EVENT_STRENGTH, ITEM_TEXT_COLUMNS, SECONDS_PER_DAY

if TYPE_CHECKING:
    from shortlist.data.containers import Interactions, Items

#: EASE inverts an items × items matrix: only where the catalogue is this small.
EASE_MAX_ITEMS = 20_000
#: A log this long has training rows to spare: fewer label windows (each costs a fit of every source).
LARGE_LOG_ROWS = 1_000_000
#: Source settings the two-stage model uses unless a config overrides them: the content source
#: encodes with TF-IDF + SVD (it is fitted once per label window, a transformer would dominate the
#: fit), ALS runs smaller than its own defaults (fitted once per window too).
MODEL_SOURCE_PARAMS: dict[str, dict[str, Any]] = {
    "content": {"encoder": "tfidf"},
    "als": {"factors": 64, "iterations": 8},
}


@dataclass(frozen=True)
class TwoStageConfig:
    """The two-stage model's options; ``None`` = derived from the data (:func:`derive`).

    ``target``: ``"last"`` (each user's next interaction), ``"days:N"`` (the next N days) or
    ``"random:Q"`` (a random share of a user's interactions, for logs without times).
    ``sources``: stage-1 source names (default: the set the data calls for); ``source_params``: per
    source constructor overrides. ``per_source``: candidates each source proposes; ``max_candidates``:
    the fused union's size per user (200 for ``last``, 100 for ``days:N``). ``n_windows``: label
    windows stacked for training (3; 2 for ``days:N`` on a log of a million rows or more, where one
    window's sample already fills the ranker's row budget). ``max_negatives`` /
    ``hard_negatives``: negatives kept per user and window, the best-ranked always.
    ``max_train_rows``: the ranker's candidate-row budget; a label window whose users would pass it
    takes a seeded sample of them. ``shard_users``: users per shard of batch work (memory follows it).
    ``ranker``: ``lightgbm``, ``xgboost``, or ``lightgbm-dask`` (LightGBM's Dask ranker on a cluster's
    workers, where the training rows stay; its rounds chosen by early stopping on a sample of about
    ``ranker_sample_rows`` rows: docs/distributed.md). ``n_jobs``: threads for independent fits and for shards of users
    run side by side (None: one per core; memory then holds ``n_jobs`` shards). ``event_weights``: each event
    type's weight (:mod:`shortlist.data.events`: the strengths every count, ALS's confidence and the
    label grades use; finite, >= 0; a log's event type it does not name is an error).
    ``event_types``: the types per-event features count (None: the log's, where it has two or more;
    ``()``: none). ``update_sweeps``: the ALS sweeps an incremental update runs from the old factors.
    """

    target: str = "last"
    allow_repeats: bool = False
    sources: tuple[str, ...] | None = None
    source_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    per_source: int = 300
    max_candidates: int | None = None
    n_windows: int | None = None
    max_negatives: int | None = 250
    hard_negatives: int = 50
    valid_share: float = 0.15
    max_train_rows: int = 2_000_000
    shard_users: int = 10_000
    ranker: str = "lightgbm"
    ranker_params: Mapping[str, Any] = field(default_factory=dict)
    ranker_sample_rows: int = 1_000_000
    n_jobs: int | None = None
    update_sweeps: int = 3
    seed: int = 0
    event_weights: Mapping[str, float] = field(default_factory=lambda: dict(EVENT_STRENGTH))
    event_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        from shortlist.pipeline.labels import Target

        Target.parse(self.target)
        for name in ("per_source", "max_candidates", "n_windows", "max_train_rows", "shard_users", "n_jobs",
                     "update_sweeps", "ranker_sample_rows"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive whole number (or left out to derive it), got {value!r}")
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "event_weights", check_event_weights(self.event_weights))
        if self.event_types is not None:
            object.__setattr__(self, "event_types", tuple(str(t) for t in self.event_types))
        if not 0.0 <= self.valid_share < 1.0:
            raise ConfigError(f"valid_share must be in [0, 1), got {self.valid_share}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["sources"] = None if self.sources is None else list(self.sources)
        out["event_types"] = None if self.event_types is None else list(self.event_types)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TwoStageConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def derive(config: TwoStageConfig, history: Interactions, items: Items | None = None) -> TwoStageConfig:
    """``config`` with every ``None`` chosen from the data, and each source's settings spelled out
    (the model's defaults, then what the data calls for, then the config's overrides)."""
    from shortlist.pipeline.labels import Target

    last = Target.parse(config.target).kind == "last"
    sources = config.sources or default_sources(n_items=history.n_items, repeats=config.allow_repeats,
                                                has_text=has_text(items))
    derived = data_source_params(history)  # (a source given as an object keeps its own settings)
    params = {s: {**MODEL_SOURCE_PARAMS.get(s, {}), **derived.get(s, {}), **config.source_params.get(s, {})}
              for s in sources}
    types = event_types(history) if config.event_types is None else config.event_types
    return replace(config, sources=tuple(sources), source_params=params, event_types=types,
                   max_candidates=config.max_candidates or (200 if last else 100),
                   n_windows=config.n_windows or (3 if last or len(history) < LARGE_LOG_ROWS else 2))


def default_sources(*, n_items: int, repeats: bool, has_text: bool = False) -> list[str]:
    """The default stage-1 set: sequence- and co-occurrence-aware CF, linear and factor models,
    item text (when the catalogue has any), popularity windows, repurchase where re-consuming is
    normal, and the recent items of similar users."""
    names = ["repurchase"] if repeats else []
    names += ["transition", "itemknn", "covisit"]
    if n_items <= EASE_MAX_ITEMS:
        names.append("ease")
    names.append("als")
    if has_text:
        names.append("content")
    return [*names, "popular_recent", "popular", "userknn"]


def has_text(items: Items | None) -> bool:
    """Whether a catalogue carries any text the content source can embed: a text column with at
    least one non-blank value (a column that is there but empty does not count)."""
    if items is None:
        return False
    return any(items.frame.get_column(c).cast(pl.Utf8).str.strip_chars().str.len_chars().gt(0).any()
               for c in ITEM_TEXT_COLUMNS if items.has(c))


def data_source_params(history: Interactions) -> dict[str, dict[str, Any]]:
    """Source settings that follow the data: where items come in baskets of 5 or more (retail
    invoices) a text profile spans more of the history and favours close neighbours, and EASE
    decays pairs with a half-life of half the history's span (assortments drift)."""
    if history.basket_size() >= 5:
        first, last = history.time_span()
        half_life = max(30.0, (last - first) / SECONDS_PER_DAY / 2.0)
        return {"content": {"n_recent": 200, "sharpen": 5.0}, "ease": {"half_life_days": round(half_life, 1)}}
    return {}


# --- the TOML file -------------------------------------------------------------------------------
def _model_section() -> dict[str, Any]:
    """The file's [model] table: every scalar field of :class:`TwoStageConfig`, and the model kind."""
    base = TwoStageConfig()
    skip = {"source_params", "ranker_params", "event_weights", "event_types"}
    return {"kind": "two_stage", **{f.name: getattr(base, f.name) for f in fields(base) if f.name not in skip}}


DEFAULTS: dict[str, dict[str, Any]] = {
    "model": _model_section(),  # kind: two_stage, or a baseline (auto | popular | popular_recent | ...)
    "ranker": {},  # LightGBM/XGBoost ranker parameters, e.g. num_leaves = 63
    "source_params": {},  # per-source constructor overrides, e.g. [source_params.als] factors = 128
    # Event weights, e.g. weights = {view = 1, cart = 3, purchase = 5} (any names; empty: the defaults,
    # shortlist.schema.EVENT_STRENGTH); types: the event types per-event features count (empty: the log's).
    "events": {"weights": {}, "types": []},
    "evaluate": {
        "k": 10,
        "ks": [5, 10, 20],
        "depth": 100,
    },
    "tracking": {  # MLflow runs of fit / evaluate (pip install 'shortlist[mlflow]'); flags override
        "enabled": False,
        "uri": "",  # empty: MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the working directory
        "experiment": "shortlist",
        "register": "",  # fit only: register each tracked model as a new version of this name
        "alias": "",  # and point this alias (e.g. champion) at it
    },
    "distributed": {  # the sharded steps on a Dask cluster (pip install 'shortlist[dask]'); --scheduler overrides
        "scheduler": "",  # empty: this process; local, local:N, or tcp://HOST:PORT of a running `dask scheduler`
        "worker_memory": "",  # a local cluster's memory limit per worker, e.g. "4GB" (empty: Dask's share)
        "retries": 2,  # times a shard that raised runs again (a lost worker's shards move to the others)
    },
}


def model_config(cfg: Mapping[str, Any], **overrides: Any) -> TwoStageConfig:
    """The :class:`TwoStageConfig` of a loaded file (``overrides``, e.g. from flags, win when not None)."""
    m = {k: v for k, v in cfg["model"].items() if k != "kind"}
    m.update(source_params=cfg.get("source_params", {}), ranker_params=cfg.get("ranker", {}))
    events = cfg.get("events", {})
    if events.get("weights"):
        m["event_weights"] = check_event_weights(events["weights"], where="[events] weights")
    if events.get("types"):
        m["event_types"] = tuple(events["types"])
    m.update({k: v for k, v in overrides.items() if v is not None})
    if m.get("sources") == []:
        m["sources"] = None
    return TwoStageConfig(**m)


def merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any], *, where: str = "config") -> dict[str, Any]:
    """A deep copy of ``defaults`` with ``overrides`` applied, checking every key and type."""
    out = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if key not in out:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: {', '.join(sorted(out))}")
        base = out[key]
        if isinstance(base, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: [{key}] must be a table, got {type(value).__name__}")
            # An empty default table is free-form: its keys are checked by whoever consumes it.
            out[key] = merge(base, value, where=f"{where}.{key}") if base else copy.deepcopy(dict(value))
        elif base is not None and not _compatible(base, value):
            raise ConfigError(
                f"{where}: {key} must be {type(base).__name__}, got {type(value).__name__} ({value!r})"
            )
        else:
            out[key] = value
    return out


def _compatible(base: Any, value: Any) -> bool:
    if isinstance(base, bool) or isinstance(value, bool):
        return isinstance(base, bool) and isinstance(value, bool)
    if isinstance(base, int | float) and isinstance(value, int | float):
        return True
    return isinstance(value, type(base))


def load_config(path: Path | str | None, *, defaults: Mapping[str, Any] = DEFAULTS) -> dict[str, Any]:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    if path is None:
        return copy.deepcopy(dict(defaults))
    path = Path(path)
    try:
        overrides = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML ({e})") from e
    return merge(defaults, overrides, where=str(path))
