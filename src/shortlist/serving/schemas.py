"""Request and response bodies. Unknown fields are errors (422 naming the field), ids are strings
or integers (``17850`` and ``"17850"`` are the same id)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, WithJsonSchema

#: Longest id or category name a request may carry: longer ones are not ids, and would fill the cache.
MAX_ID_CHARS = 256


def _text(value: object, *, limit: int = MAX_ID_CHARS) -> str:
    """A string of 1 to ``limit`` characters, not only spaces, of valid Unicode (a lone surrogate
    such as ``"\\ud800"`` can be neither looked up nor written back)."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    if not value.strip() or len(value) > limit:
        raise ValueError(f"must hold 1 to {limit} characters (not only spaces), got {len(value)}")
    return value


def _external_id(value: object) -> str | int:
    """An id as JSON: a string (as :func:`_text`) or an integer, never a float or a bool."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a string or an integer")
    return value if isinstance(value, int) else _text(value)


#: A request's text: 1 to ``MAX_ID_CHARS`` characters of valid Unicode.
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string", "maxLength": MAX_ID_CHARS})]
#: An external id as JSON: a string or an integer (``17850`` and ``"17850"`` are the same id).
ExternalId = Annotated[str | int, PlainValidator(_external_id),
                       WithJsonSchema({"anyOf": [{"type": "string", "maxLength": MAX_ID_CHARS}, {"type": "integer"}]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Price = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class BoostRule(_Strict):
    """Scores of ``items`` and of items in any of ``categories``: + ln(``multiply``) + ``add``."""

    items: list[ExternalId] | None = None
    categories: list[Text] | None = None
    multiply: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    add: Annotated[float, Field(allow_inf_nan=False)] = 0.0


class PinRule(_Strict):
    item_id: ExternalId
    position: Annotated[StrictInt, Field(ge=1)]


class RuleFields(_Strict):
    """A request's business rules (see ``shortlist.pipeline.rules``), added to the server's own."""

    exclude_items: list[ExternalId] | None = None
    categories: list[Text] | None = None
    available_items: list[ExternalId] | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    boosts: list[BoostRule] | None = None
    pins: list[PinRule] | None = None
    max_per_category: Annotated[StrictInt, Field(ge=1)] | None = None


class RecommendRequest(RuleFields):
    user_id: ExternalId
    k: Annotated[StrictInt, Field(ge=1)] = 10
    use_cache: bool = True
    explain: bool = False


class SessionRequest(RuleFields):
    items: list[ExternalId]
    k: Annotated[StrictInt, Field(ge=1)] = 10
    explain: bool = False
    session_id: ExternalId | None = None  # buckets an anonymous session into an A/B variant


class EventRequest(_Strict):
    user_id: ExternalId
    item_id: ExternalId
    timestamp: Annotated[StrictInt, Field(ge=0, lt=100_000_000_000)] | None = None
    event: Text | None = None


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
    variant: str


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


#: Longest search text a request may carry (a long review fits).
MAX_QUERY_CHARS = 2000


def _query(value: object) -> str:
    """A search text: as an id (:func:`_text`), up to ``MAX_QUERY_CHARS`` characters."""
    return _text(value, limit=MAX_QUERY_CHARS)


SearchText = Annotated[str, PlainValidator(_query), WithJsonSchema({"type": "string", "maxLength": MAX_QUERY_CHARS})]


class SearchRequest(_Strict):
    query: SearchText
    k: Annotated[StrictInt, Field(ge=1)] = 10
    user_id: ExternalId | None = None
    mode: Text = "auto"


class SearchItem(BaseModel):
    item_id: str
    title: str | None
    score: float
    rank: int


class SearchResponse(BaseModel):
    query: str
    mode: str
    personalised: bool
    items: list[SearchItem]
    latency_ms: float
