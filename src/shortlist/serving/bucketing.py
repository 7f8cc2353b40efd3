"""Sticky A/B bucketing: which variant a user belongs to.

A user's variant follows from a hash of (salt, user id) alone — BLAKE2b, its first 8 bytes read as
a number in [0, 1) — against the cumulative shares in the order the variants are listed. So a user
always lands in the same variant, on every replica and after a restart; changing the salt reshuffles
everyone; moving the boundary between two neighbouring variants only moves users between those two.
"""

from __future__ import annotations

import hashlib

import numpy as np

from shortlist.data.ids import normalize_id
from shortlist.errors import ShortlistError

_UNIT = float(2**64)


def bucket(user_id: str | int, salt: str) -> float:
    """A user's place in [0, 1): uniform over users, fixed for (salt, user id)."""
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user = str(user_id)
    elif isinstance(user_id, str) and "." not in user_id and user_id == user_id.strip():
        user = user_id  # already as normalize_id writes it: skip its (costly) general path
    else:
        try:
            user = normalize_id(user_id)  # "17850", 17850, " 17850" and "17850.0" are one user
        except ShortlistError:
            user = str(user_id)
    digest = hashlib.blake2b(f"{salt}\x1f{user}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _UNIT


def assign(user_id: str | int | None, names: tuple[str, ...], shares: tuple[float, ...], salt: str) -> str:
    """The variant of ``user_id`` among ``names`` with ``shares`` (``None``, or one variant: the first)."""
    if user_id is None or len(names) == 1:
        return names[0]
    bounds = np.cumsum(shares)
    bounds[-1] = 1.0  # no user falls past the last share to float rounding
    return names[min(int(np.searchsorted(bounds, bucket(user_id, salt), side="right")), len(names) - 1)]


__all__ = ["assign", "bucket"]
