"""How long steps report how far they got: ``progress(step, done, total)`` after each unit of work
(a shard, a source fit, a label window). The library calls it; the CLI draws it (with an ETA)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def silent(step: str, done: int, total: int) -> None:
    """The default: report nothing."""
