"""Fixtures every test folder may use."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

CliRunner = Callable[[list[str]], tuple[int, str, str]]


@pytest.fixture
def cli(capsys) -> CliRunner:
    """Run ``shortlist ARGV`` in-process: (exit code, stdout, stderr)."""
    from shortlist.cli import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        old = sys.argv
        sys.argv = ["shortlist", *argv]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        finally:
            sys.argv = old
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
