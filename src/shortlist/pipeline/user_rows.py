"""A fitted object split into its item side and its users' rows, so a shard carries only its
users' rows and a worker holds the item side once (not every user's state for each window).

A class whose fitted state is partly indexed by user names those attributes in ``USER_ROWS``. A
value there is an array or CSR matrix with one row per user, an object with ``take_rows(users)``
(:class:`TakesRows`), another object with ``USER_ROWS``, None, or a dict, list or tuple of these.
An object whose own class does not declare ``USER_ROWS`` is kept whole and must be asked by user
id (a source of the user's own making, a subclass that may add state, a ``Chain``, whose parts may
be either). Shared objects stay shared: each is split once.

:func:`item_side` is a copy with no user rows; :func:`user_rows` lists the rows of some users;
:func:`for_users` puts such a list back into an item side, answering for ``users[i]`` as user ``i``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, Self, TypeVar, overload, runtime_checkable

import numpy as np
import scipy.sparse as sp

from shortlist.retrieval.topk import rows_of

T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
NO_USERS = np.zeros(0, np.int64)


@runtime_checkable
class TakesRows(Protocol):
    """A user-indexed structure that can cut itself to some users (user ``users[i]`` becomes row ``i``)."""

    def take_rows(self, users: np.ndarray) -> Self: ...


def splits_users(obj: Any) -> bool:
    """Whether ``obj``'s own class declares its user rows (and so answers for rows once split). A
    subclass that does not declare them again may hold more: it is kept whole, asked by user id."""
    return "USER_ROWS" in vars(type(obj))


def take_rows(value: Any, users: np.ndarray) -> Any:
    """The rows of ``users`` of one user-indexed leaf (all must be rows of it)."""
    if isinstance(value, np.ndarray):
        return value[users]
    if sp.issparse(value):
        if np.any(users >= value.shape[0]):
            raise IndexError(f"user rows {users.max()} past the matrix's {value.shape[0]}")
        return rows_of(sp.csr_matrix(value), users)
    if isinstance(value, TakesRows):
        return value.take_rows(users)
    raise TypeError(f"{type(value).__name__} is declared as user rows but is not an array, a CSR matrix "
                    "or an object with take_rows()")


@dataclass
class _Walk:
    """A copy of an object graph whose user-indexed leaves are replaced by ``leaf(value)``."""

    leaf: Callable[[Any], Any]

    def __post_init__(self) -> None:
        self.done: dict[int, Any] = {}
        self.keep: list[Any] = []  # originals, so that no id is reused during the walk

    def value(self, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list | tuple) and not hasattr(v, "_fields"):
            return type(v)(self.value(x) for x in v)
        if id(v) in self.done:
            return self.done[id(v)]
        self.keep.append(v)
        if isinstance(v, np.ndarray) or sp.issparse(v) or isinstance(v, TakesRows):
            out = self.leaf(v)
        elif splits_users(v):
            out = self._object(v)
        else:
            out = v  # no user rows declared: kept whole
        self.done[id(v)] = out
        return out

    def _object(self, obj: Any) -> Any:
        out = object.__new__(type(obj))
        out.__dict__.update(obj.__dict__)
        self.done[id(obj)] = out  # before the attributes: a cycle back to obj finds the copy
        for name in type(obj).USER_ROWS:
            object.__setattr__(out, name, self.value(getattr(obj, name)))
        return out


def item_side(obj: T) -> T:
    """A copy of ``obj`` with every user row removed (what is sent to each worker once)."""
    return _Walk(lambda v: take_rows(v, NO_USERS)).value(obj)


def user_rows(obj: Any, users: np.ndarray) -> list[Any]:
    """The rows of ``users`` (distinct, known to ``obj``) of each user-indexed leaf, in walk order."""
    users = np.asarray(users, np.int64)
    rows: list[Any] = []
    _Walk(lambda v: rows.append(take_rows(v, users))).value(obj)
    return rows


def for_users(side: T, rows: list[Any]) -> T:
    """``side`` (an :func:`item_side`) with ``rows`` (a :func:`user_rows` of the same object) put
    back: it answers for those users as users ``0..len(users)-1``."""
    it: Iterator[Any] = iter(rows)
    out = _Walk(lambda _: next(it)).value(side)
    if next(it, None) is not None:
        raise ValueError("more user rows than the object has places for: not the same object's rows")
    return out


@dataclass(frozen=True)
class UsersWithRows:
    """A shard of users (``users``, in shard order) and an object's rows of its known ones
    (:func:`user_rows`). Put back with :func:`for_users`, the object answers for ``ids[j]`` as user
    ``j``: the known users first (their rows), then the unknown ones (past the rows: still unknown).
    ``local[i]`` is ``users[i]``'s id there."""

    users: np.ndarray
    rows: list[Any]
    ids: np.ndarray
    local: np.ndarray


def with_rows(obj: Any, users: np.ndarray, n_users: int | None = None) -> UsersWithRows:
    """``users`` (distinct) with ``obj``'s rows of them. ``n_users``: ids from it on are unknown to
    ``obj`` and carry no row; ``None``: every user must be known (:class:`IndexError` otherwise)."""
    users = np.asarray(users, np.int64)
    known = np.ones(len(users), bool) if n_users is None else users < n_users
    order = np.concatenate([np.flatnonzero(known), np.flatnonzero(~known)])
    local = np.empty(len(users), np.int64)
    local[order] = np.arange(len(users))
    return UsersWithRows(users, user_rows(obj, users[known]), users[order], local)


class Lazy(Sequence[R]):
    """``cut(s)`` for each of ``shards``, made when asked for: a mapper that takes the shards one at
    a time holds one shard's rows, not every user's twice."""

    def __init__(self, cut: Callable[[S], R], shards: Sequence[S]) -> None:
        self.cut, self.shards = cut, shards

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[R]:
        # not Sequence's: that one stops quietly at an IndexError, which a bad shard would raise
        for i in range(len(self)):
            yield self[i]

    @overload
    def __getitem__(self, i: int) -> R: ...

    @overload
    def __getitem__(self, i: slice) -> list[R]: ...

    def __getitem__(self, i: int | slice) -> R | list[R]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.cut(self.shards[i])


def shards_with_rows(obj: Any, shards: Sequence[np.ndarray], n_users: int | None = None) -> Lazy[UsersWithRows]:
    """Shards of users, each cut lazily with ``obj``'s rows of them (:func:`with_rows`)."""
    return Lazy(partial(with_rows, obj, n_users=n_users), shards)
