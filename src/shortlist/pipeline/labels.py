"""Label windows inside the training data: the fit discipline's history / label split.

``last``: each user's d-th last interaction is the label and everything before it the history,
for d = 1 .. n_windows (stacked label depths). ``days:N``: the interactions of a window of N days
are the labels and everything before the window the history, for n_windows consecutive windows.
``random:Q``: a seeded random share Q of each user's interactions are the labels, the rest the
history, one draw a window — the target of a log without times, evaluated by a random holdout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import polars as pl

from shortlist.data.containers import Interactions
from shortlist.data.events import DEFAULT_EVENT_WEIGHTS, check_events, label_grade
from shortlist.data.split import leave_last_out, random_holdout, time_window_split
from shortlist.errors import ConfigError, DataValidationError
from shortlist.schema import ITEM, LABEL, SECONDS_PER_DAY, TIMESTAMP, USER


@dataclass(frozen=True)
class Target:
    """What the ranker learns to predict: the ``last`` interaction, everything in the next ``days``,
    or a random ``share`` of a user's interactions (logs without times)."""

    kind: str  # "last" | "days" | "random"
    days: float = 0.0
    share: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Target:
        if text == "last":
            return cls("last")
        name, _, arg = text.partition(":")
        try:
            value = float(arg)
        except ValueError:
            value = -1.0
        if name == "days" and math.isfinite(value) and value > 0:
            return cls("days", value)
        if name == "random" and 0 < value < 1:
            return cls("random", share=value)
        raise ConfigError(f"target must be 'last', 'days:N' with N a finite number of days > 0, or 'random:Q' "
                          f"with 0 < Q < 1, got {text!r}")

    @property
    def reference(self) -> str:
        """Feature reference time: the user's own last activity, or the end of the history."""
        return "global" if self.kind == "days" else "user"

    def __str__(self) -> str:
        return {"last": "last", "days": f"days:{self.days:g}", "random": f"random:{self.share:g}"}[self.kind]


@dataclass(frozen=True)
class LabelWindow:
    name: str
    history: Interactions
    labels: pl.DataFrame  # user, item, label (graded by the event weights' order, else 1)
    n_seen_labels: int  # labels the user already had (dropped when repeats are not allowed)


def label_windows(data: Interactions, target: Target, *, n_windows: int, repeats: bool,
                  event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> list[LabelWindow]:
    """Up to ``n_windows`` (history, labels) pairs, most recent first; empty windows are skipped.
    Labels are graded by ``event_weights`` (:func:`shortlist.data.events.label_grade`); a pair whose
    events all weigh 0 is no label."""
    return list(iter_label_windows(data, target, n_windows=n_windows, repeats=repeats, event_weights=event_weights))


def iter_label_windows(data: Interactions, target: Target, *, n_windows: int, repeats: bool,
                       event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> Iterator[LabelWindow]:
    """:func:`label_windows` one at a time, so a fit holds one window's history at once."""
    check_events(data, event_weights)
    for w in range(n_windows):
        try:
            if target.kind == "last":
                split = leave_last_out(data, n_last=w + 1, repeats=True, min_train=1)
                test = split.test.frame.sort([USER, TIMESTAMP], maintain_order=True).group_by(
                    USER, maintain_order=True).first()
                name = f"last-{w + 1}"
            elif target.kind == "random":
                split = random_holdout(data, fraction=target.share, repeats=True, seed=w)
                test, name = split.test.frame, f"random:{target.share:g}#{w + 1}"
            else:
                end = data.time_span()[1] - int(w * target.days * SECONDS_PER_DAY)
                part = data.filter(pl.col(TIMESTAMP) <= end)
                split = time_window_split(part, days=target.days, repeats=True)
                test = split.test.frame
                name = f"days:{target.days:g}@-{w}"
        except DataValidationError:
            break
        window = label_window(name, split.train, test, repeats=repeats, event_weights=event_weights)
        if window is not None:
            yield window


def label_window(name: str, history: Interactions, test: pl.DataFrame, *, repeats: bool,
                 event_weights: Mapping[str, float]) -> LabelWindow | None:
    """The window whose labels are ``test``'s rows (graded; without ``repeats``, pairs already in
    ``history`` left out and counted) over ``history``; ``None`` when no label remains."""
    labels = _graded(test, event_weights)
    seen = history.frame.select(USER, ITEM).unique()
    is_seen = labels.join(seen.with_columns(pl.lit(True).alias("_s")), on=[USER, ITEM], how="left")
    n_seen = int(is_seen.get_column("_s").fill_null(False).sum())
    if not repeats:
        labels = is_seen.filter(pl.col("_s").is_null()).drop("_s")
    return LabelWindow(name, history, labels, n_seen) if labels.height else None


def _graded(test: pl.DataFrame, event_weights: Mapping[str, float]) -> pl.DataFrame:
    """One row per (user, item); label = the grade of its strongest event, else 1 (grade 0: none)."""
    graded = test.with_columns(label_grade(test, event_weights).alias(LABEL)).group_by(
        [USER, ITEM], maintain_order=True).agg(pl.col(LABEL).max())
    return graded.filter(pl.col(LABEL) > 0)
