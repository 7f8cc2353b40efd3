"""`download`, `datasets` and `version`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shortlist import __version__
from shortlist.cli._common import app, console, out


@app.command()
def download(
    name: Annotated[str, typer.Argument(help="ml-100k | ml-1m | ml-latest-small")],
    data_dir: Annotated[Path | None, typer.Option(help="Destination (default ~/.cache/shortlist/data).")] = None,
) -> None:
    """Download a public dataset (checksum-verified) into the data folder."""
    from shortlist.data.download import download_dataset

    path = download_dataset(name, cache_dir=data_dir or Path.home() / ".cache" / "shortlist" / "data")
    console.print(f"{name} → {path}")


@app.command()
def datasets() -> None:
    """List the named datasets."""
    from shortlist.data.loaders import DATASETS

    for name, spec in DATASETS.items():
        out.print(f"{name:24s} {spec.protocol:10s} {spec.description}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


