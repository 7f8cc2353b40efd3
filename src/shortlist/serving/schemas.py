"""Request and response bodies. Unknown fields are errors (422 naming the field), ids are strings
or integers (``17850`` and ``"17850"`` are the same id)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

#: An external id as JSON: a string or an integer (never a float or a bool).
ExternalId = StrictStr | StrictInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Strict):
    user_id: ExternalId
    k: Annotated[StrictInt, Field(ge=1)] = 10
    exclude_items: list[ExternalId] | None = None
    categories: list[StrictStr] | None = None
    use_cache: bool = True
    explain: bool = False


class SessionRequest(_Strict):
    items: list[ExternalId]
    k: Annotated[StrictInt, Field(ge=1)] = 10
    exclude_items: list[ExternalId] | None = None
    categories: list[StrictStr] | None = None
    explain: bool = False


class EventRequest(_Strict):
    user_id: ExternalId
    item_id: ExternalId
    timestamp: Annotated[StrictInt, Field(ge=0, lt=100_000_000_000)] | None = None
    event: StrictStr | None = None


class Contribution(BaseModel):
    feature: str
    value: float


class RecommendedItem(BaseModel):
    item_id: str
    title: str | None
    score: float | None
    rank: int
    sources: dict[str, float]
    contributions: list[Contribution] | None = None


class RecommendResponse(BaseModel):
    user_id: str | None
    items: list[RecommendedItem]
    latency_ms: float
    cache_hit: bool
    n_candidates: int
    fallback: str | None
    model_version: str


class EventResponse(BaseModel):
    ok: bool
    history_length: int
    degraded: list[str] = []


class SimilarItem(BaseModel):
    item_id: str
    title: str | None
    score: float
    rank: int


class SimilarResponse(BaseModel):
    item_id: str
    items: list[SimilarItem]
    model_version: str


class HistoryItem(BaseModel):
    item_id: str
    title: str | None
    timestamp: int
    online: bool


class HistoryResponse(BaseModel):
    user_id: str
    known: bool
    items: list[HistoryItem]
