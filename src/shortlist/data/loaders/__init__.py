"""Dataset loaders: generic files and the public recommendation datasets, plus a registry of names.

Every loader takes paths (files or a folder), reads plain or gzipped files, returns a
:class:`~shortlist.data.Dataset` built by :func:`~shortlist.data.build_dataset`, and records every
removed row in ``dataset.report``. Loaders never read environment variables or the network.
"""

from ._io import InputNotFoundError, UnreadableFileError
from .amazon import load_amazon
from .amazon_meta import load_amazon_meta
from .generic import load_dataset, load_interactions, load_items, load_user_ids
from .hm import load_hm, load_hm_articles, load_hm_customers
from .movielens import load_movielens, load_movielens_users
from .registry import DATASETS, DatasetSpec, find_dataset, get_spec, load_named
from .retail import load_online_retail
from .retailrocket import load_retailrocket

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "InputNotFoundError",
    "UnreadableFileError",
    "find_dataset",
    "get_spec",
    "load_amazon",
    "load_amazon_meta",
    "load_dataset",
    "load_hm",
    "load_hm_articles",
    "load_hm_customers",
    "load_interactions",
    "load_items",
    "load_movielens",
    "load_movielens_users",
    "load_named",
    "load_online_retail",
    "load_retailrocket",
    "load_user_ids",
]
