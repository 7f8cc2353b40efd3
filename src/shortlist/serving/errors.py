"""Errors a request can cause, which the app turns into HTTP answers."""

from __future__ import annotations


class BadRequestError(ValueError):
    """A request that parsed but is not acceptable; becomes a 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class NotFoundError(LookupError):
    """Something a request names (an item, a variant) that is not there; becomes a 404."""


__all__ = ["BadRequestError", "NotFoundError"]
