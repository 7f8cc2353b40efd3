"""Fixtures for the loader tests: the shared real-data folder (skipped when absent) and tiny files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

#: ``../shared/data`` beside the repository root; CI has it, a fresh clone does not.
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def shared() -> Callable[[str], Path]:
    """``shared("ml-100k")`` → that folder of the shared data, or skip the test when it is absent."""

    def get(name: str) -> Path:
        path = (SHARED_DATA / name).resolve()
        if not path.exists():
            pytest.skip(f"shared data {name!r} not available at {path}")
        return path

    return get


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """``write("a/b.csv", text)`` → a file under tmp_path (parents created)."""

    def _write(rel: str, content: str | bytes) -> Path:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write
