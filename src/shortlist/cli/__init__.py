"""Command-line interface: parse → call the library → write output. Nothing else lives here.

One module per group of commands; each registers on the shared :data:`app`.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

from rich.text import Text

from shortlist.cli._common import app, console
from shortlist.errors import ShortlistError

__all__ = ["app", "main"]

#: Command modules, in the order `shortlist --help` lists their commands (importing one registers them).
COMMAND_MODULES = ("model", "evaluate", "serve", "data", "runs", "search")
for _module in COMMAND_MODULES:
    importlib.import_module(f"shortlist.cli.{_module}")


def main() -> None:
    """Entry point: one clear line and a non-zero exit on errors, never a traceback."""
    logging.basicConfig(level=os.environ.get("SHORTLIST_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    debug = bool(os.environ.get("SHORTLIST_DEBUG"))
    try:
        app()  # standalone: usage errors print their own message and exit 2
    except (ShortlistError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if debug:
            raise
        console.print(Text.assemble(("error:", "red"), f" {e}"), soft_wrap=True)
        sys.exit(2)
    except Exception as e:  # anything unexpected: still one line, with the way to see more
        if debug:
            raise
        console.print(Text.assemble(("error:", "red"), f" {type(e).__name__}: {e} "
                                    "(set SHORTLIST_DEBUG=1 for the traceback)"), soft_wrap=True)
        sys.exit(1)


