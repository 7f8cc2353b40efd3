"""Named datasets: where to find each one on disk, how to load it, its default protocol and origin."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

from shortlist.data.containers import Dataset
from shortlist.errors import DatasetNotFoundError, UnknownDatasetError

from ._io import InputNotFoundError, find_first
from .amazon import load_amazon
from .hm import load_hm
from .movielens import load_movielens
from .retail import load_online_retail
from .retailrocket import load_retailrocket

logger = logging.getLogger(__name__)

_ML_URL = "https://files.grouplens.org/datasets/movielens"
_ML_LICENCE = "GroupLens MovieLens terms: research use, cite Harper & Konstan (2015), no redistribution"
_AMAZON_LICENCE = "Amazon Review Data (Ni, Li & McAuley, EMNLP 2019): research use, cite, no redistribution"


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, load and evaluate one named dataset."""

    name: str
    loader: Callable[[Path], Dataset]  # takes the dataset folder
    dir_names: tuple[str, ...]  # folder names searched for inside each search directory
    markers: tuple[str, ...]  # glob patterns; a folder holds the dataset if any one matches
    protocol: str  # default evaluation protocol (see shortlist.data.split)
    repeats: bool
    description: str
    licence: str
    homepage: str
    url: str | None = None  # download URL (MovieLens zips)
    sha256: str | None = None  # of the file at ``url``
    archive_root: str | None = None  # folder inside the archive that holds the files
    user_supplied: bool = False  # the user must obtain the files themselves
    bundled: str | None = None  # resource path under ``shortlist.data`` shipped with the package

    def holds(self, folder: Path) -> bool:
        return folder.is_dir() and any(next(folder.glob(m), None) is not None for m in self.markers)

    def how_to_get(self) -> str:
        where = f"DIR/{self.dir_names[0]}/ holding {self.markers[0].rstrip('*')}"
        if self.url:
            return f"run `shortlist download {self.name}`, or pass --data-dir DIR with {where}"
        return f"get the files from {self.homepage} and pass --data-dir DIR with {where}"


def _amazon(category: str, name: str) -> Callable[[Path], Dataset]:
    def load(folder: Path) -> Dataset:
        patterns = (f"{category}_5.json*", f"{category}.json*", f"{category}.jsonl*")
        reviews = find_first(folder, patterns)
        if reviews is None:
            raise InputNotFoundError(folder, f"no {category} review file ({', '.join(patterns)})")
        return load_amazon(reviews, name=name)

    return load


DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec(
            name="online-retail",
            loader=load_online_retail,
            dir_names=("online-retail",),
            markers=(
                "online_retail*.parquet",
                "online_retail*.csv*",
                "Online Retail*.xlsx",
                "online_retail*.xlsx",
            ),
            protocol="days:14",
            repeats=True,
            description="UCI Online Retail 2010-11 invoice lines (UK gift shop)",
            licence="CC BY 4.0 (Chen, Sain & Guo 2012; UCI ML Repository)",
            homepage="https://archive.ics.uci.edu/dataset/352/online+retail",
            bundled="bundled/online_retail.parquet",
        ),
        DatasetSpec(
            name="ml-100k",
            loader=partial(load_movielens, variant="100k", name="ml-100k"),
            dir_names=("ml-100k",),
            markers=("u.data",),
            protocol="llo",
            repeats=False,
            description="MovieLens 100K ratings (1997-98)",
            licence=_ML_LICENCE,
            homepage="https://grouplens.org/datasets/movielens/100k/",
            url=f"{_ML_URL}/ml-100k.zip",
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            archive_root="ml-100k",
        ),
        DatasetSpec(
            name="ml-1m",
            loader=partial(load_movielens, variant="1m"),
            dir_names=("ml-1m", "ml-1m-partial"),
            markers=("ratings.dat", "ratings_pairs_only.parquet"),
            protocol="llo",
            repeats=False,
            description="MovieLens 1M ratings (2000-03)",
            licence=_ML_LICENCE,
            homepage="https://grouplens.org/datasets/movielens/1m/",
            url=f"{_ML_URL}/ml-1m.zip",
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            archive_root="ml-1m",
        ),
        DatasetSpec(
            name="ml-latest-small",
            loader=partial(load_movielens, variant="latest", name="ml-latest-small"),
            dir_names=("ml-latest-small",),
            markers=("ratings.csv",),
            protocol="llo",
            repeats=False,
            description="MovieLens latest-small ratings (1996-2018)",
            licence=_ML_LICENCE,
            homepage="https://grouplens.org/datasets/movielens/latest/",
            url=f"{_ML_URL}/ml-latest-small.zip",
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
            archive_root="ml-latest-small",
        ),
        DatasetSpec(
            name="amazon-gift-cards",
            loader=_amazon("Gift_Cards", "amazon-gift-cards"),
            dir_names=("amazon18-gift-cards", "amazon-gift-cards", "amazon23-gift-cards"),
            markers=("Gift_Cards_5.json*", "Gift_Cards.json*", "Gift_Cards.jsonl*"),
            protocol="llo",
            repeats=False,
            description="Amazon Reviews, Gift Cards 5-core + metadata",
            licence=_AMAZON_LICENCE,
            homepage="https://nijianmo.github.io/amazon/",
            user_supplied=True,
        ),
        DatasetSpec(
            name="amazon-magazine-subs",
            loader=_amazon("Magazine_Subscriptions", "amazon-magazine-subs"),
            dir_names=("amazon18-magazine-subs", "amazon-magazine-subs", "amazon23-magazine-subs"),
            markers=(
                "Magazine_Subscriptions_5.json*",
                "Magazine_Subscriptions.json*",
                "Magazine_Subscriptions.jsonl*",
            ),
            protocol="llo",
            repeats=False,
            description="Amazon Reviews, Magazine Subscriptions 5-core + metadata",
            licence=_AMAZON_LICENCE,
            homepage="https://nijianmo.github.io/amazon/",
            user_supplied=True,
        ),
        DatasetSpec(
            name="hm",
            loader=load_hm,
            dir_names=("hm", "h-and-m-personalized-fashion-recommendations", "h&m"),
            markers=("transactions_train.csv*",),
            protocol="days:14",
            repeats=True,
            description="H&M Personalized Fashion Recommendations purchases (Kaggle)",
            licence="Kaggle competition rules (non-commercial research)",
            homepage="https://www.kaggle.com/competitions/h-and-m-personalized-fashion-recommendations/data",
            user_supplied=True,
        ),
        DatasetSpec(
            name="retailrocket",
            loader=load_retailrocket,
            dir_names=("retailrocket", "ecommerce-dataset"),
            markers=("events.csv*",),
            protocol="days:14",
            repeats=True,
            description="RetailRocket e-commerce views, add-to-carts and transactions (Kaggle)",
            licence="CC BY-NC-SA 4.0",
            homepage="https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset",
            user_supplied=True,
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named dataset; UnknownDatasetError (with a did-you-mean) otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDatasetError(name, sorted(DATASETS)) from None


def bundled_path(spec: DatasetSpec) -> Path | None:
    """The copy shipped inside the package, if this install has one."""
    if spec.bundled is None:
        return None
    resource = resources.files("shortlist.data").joinpath(spec.bundled)
    path = Path(str(resource))
    return path if path.is_file() else None


def find_dataset(name: str, *, search_dirs: Sequence[Path | str]) -> Path:
    """The folder (or bundled file) holding dataset ``name``: the first of ``DIR/<dir name>`` or
    ``DIR`` itself, for each search directory in order, that holds the dataset's files."""
    spec = get_spec(name)
    looked: list[str] = []
    for d in (Path(p) for p in search_dirs):
        for folder in (*(d / n for n in spec.dir_names), d):
            looked.append(str(folder))
            if spec.holds(folder):
                return folder
    bundled = bundled_path(spec)
    if bundled is not None:
        logger.info("using the bundled copy of %s at %s", name, bundled)
        return bundled
    raise DatasetNotFoundError(name, looked or ["(no search directories given)"], spec.how_to_get())


def load_named(name: str, *, search_dirs: Sequence[Path | str]) -> Dataset:
    """Find dataset ``name`` under ``search_dirs`` (or its bundled copy) and load it."""
    spec = get_spec(name)
    folder = find_dataset(name, search_dirs=search_dirs)
    logger.info("loading %s from %s", name, folder)
    return spec.loader(folder)
