"""Optional LLM step: item keywords and short summaries from an OpenAI-compatible endpoint.

Any server speaking ``POST {base_url}/chat/completions`` works (Ollama, vLLM, llama.cpp, a hosted
API). Off by default; the searches and the tests never need it. Every answer is cached on disk by
(model, prompt), written atomically, so a rebuild asks only about new or changed items. The
results become catalogue columns (``llm_keywords``, ``summary``) that item documents pick up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shortlist.errors import ConfigError, ShortlistError
from shortlist.schema import ITEM_ID
from shortlist.search.data import LLM_KEYWORDS, SUMMARY
from shortlist.search.documents import DOCUMENT

logger = logging.getLogger(__name__)

_SYSTEM = "You write concise product metadata for a shop's search engine. Answer with the requested text only."
_KEYWORDS = ("List up to {n} short search phrases (1-3 words each) a customer might type to find this product, "
             "separated by commas.\n\nProduct:\n{text}")
_SUMMARY = "Summarise this product in at most {n} words for a shop's search engine.\n\nProduct:\n{text}"


class LLMError(ShortlistError, RuntimeError):
    """The endpoint could not be reached or gave an answer that is not a chat completion."""


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask: the API root (e.g. ``http://127.0.0.1:11434/v1`` for Ollama), the model,
    an optional bearer key, and the cache folder."""

    base_url: str
    model: str
    cache_dir: Path
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int = 160

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")) or not self.model:
            raise ConfigError(f"the LLM endpoint needs an http(s) base URL and a model name, got "
                              f"{self.base_url!r} and {self.model!r}")


class LLMClient:
    """Chat completions with a disk cache; ``requests`` counts the calls that reached the server."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.requests = 0

    def _cache_file(self, prompt: str) -> Path:
        key = hashlib.sha256(f"{self.settings.model}\x1f{_SYSTEM}\x1f{prompt}".encode()).hexdigest()
        return Path(self.settings.cache_dir) / key[:2] / f"{key}.json"

    def complete(self, prompt: str) -> str:
        """The model's answer to ``prompt`` (cached: the same model and prompt are asked once)."""
        path = self._cache_file(prompt)
        if path.is_file():
            return str(json.loads(path.read_text(encoding="utf-8"))["answer"])
        answer = self._ask(prompt)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".answer-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"model": self.settings.model, "prompt": prompt, "answer": answer}, fh)
        os.replace(tmp, path)
        return answer

    def _ask(self, prompt: str) -> str:
        s = self.settings
        body = json.dumps({"model": s.model, "temperature": 0, "max_tokens": s.max_tokens,
                           "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}]})
        headers = {"Content-Type": "application/json"}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        url = s.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=s.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
            return str(payload["choices"][0]["message"]["content"]).strip()
        except urllib.error.HTTPError as e:
            raise LLMError(f"{url}: HTTP {e.code} ({e.reason}). Fix: check the model name and the server") from e
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise LLMError(f"{url}: cannot reach the LLM endpoint ({e}). Fix: start the server or fix --llm-url") from e
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"{url}: the answer is not a chat completion ({e!r})") from e


def _phrases(answer: str, n: int) -> str:
    """The first ``n`` distinct phrases of a comma- or line-separated answer, lower-cased."""
    parts = [p.strip(" .;-*\"'\t").lower() for p in answer.replace("\n", ",").split(",")]
    return ", ".join(list(dict.fromkeys(p for p in parts if p))[:n])


def enrich_catalogue(catalogue: pl.DataFrame, documents: pl.DataFrame, client: LLMClient, *, keywords: int = 10,
                     summary_words: int = 0) -> pl.DataFrame:
    """``catalogue`` with ``llm_keywords`` (and ``summary`` when ``summary_words`` > 0) asked of the
    LLM from each item's document; items without a document get nulls."""
    if keywords < 1 and summary_words < 1:
        raise ConfigError("ask the LLM for keywords, a summary or both")
    texts = dict(zip(documents.get_column(ITEM_ID).to_list(), documents.get_column(DOCUMENT).to_list(), strict=True))
    ids = catalogue.get_column(ITEM_ID).to_list()
    out = catalogue
    if keywords > 0:
        kw = [_phrases(client.complete(_KEYWORDS.format(n=keywords, text=texts[i])), keywords) if i in texts else None
              for i in ids]
        out = out.with_columns(pl.Series(LLM_KEYWORDS, kw, dtype=pl.Utf8))
    if summary_words > 0:
        summaries = [client.complete(_SUMMARY.format(n=summary_words, text=texts[i])) if i in texts else None
                     for i in ids]
        out = out.with_columns(pl.Series(SUMMARY, summaries, dtype=pl.Utf8))
    logger.info("LLM enrichment: %d items, %d requests to the endpoint", len(ids), client.requests)
    return out
