"""The optional LLM step against a local OpenAI-compatible server started by the test (no network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import polars as pl
import pytest

from shortlist.errors import ConfigError
from shortlist.search.documents import item_documents
from shortlist.search.llm import LLMClient, LLMError, LLMSettings, enrich_catalogue


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"]
        answer = ("Green Tea, loose leaf\n- Japanese tea, green tea" if "tea" in prompt.lower() else
                  "A short summary." if "Summarise" in prompt else "gadget")
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_keywords_and_summaries_are_asked_once_and_cached(server, catalogue, tmp_path) -> None:
    docs = item_documents(catalogue)
    client = LLMClient(LLMSettings(base_url=server, model="tiny", cache_dir=tmp_path / "cache", api_key="k"))
    enriched = enrich_catalogue(catalogue, docs, client, keywords=3, summary_words=20)
    tea = enriched.filter(pl.col("item_id") == "tea").row(0, named=True)
    assert tea["llm_keywords"] == "green tea, loose leaf, japanese tea"
    assert enriched.filter(pl.col("item_id") == "plain").get_column("llm_keywords").item() is None  # no document
    assert client.requests == 10  # 5 documents x (keywords, summary)
    assert _Handler.seen[0]["path"] == "/v1/chat/completions" and _Handler.seen[0]["auth"] == "Bearer k"
    assert _Handler.seen[0]["temperature"] == 0
    again = LLMClient(LLMSettings(base_url=server, model="tiny", cache_dir=tmp_path / "cache"))
    assert enrich_catalogue(catalogue, docs, again, keywords=3, summary_words=20).equals(enriched)
    assert again.requests == 0  # all from the cache
    # the new columns become document fields
    doc = item_documents(enriched).filter(pl.col("item_id") == "tea").get_column("document").item()
    assert "[Summary] " in doc and "[Keywords] green tea, loose leaf, japanese tea" in doc


def test_errors_name_the_endpoint(server, catalogue, tmp_path) -> None:
    docs = item_documents(catalogue)
    broken = LLMClient(LLMSettings(base_url=server, model="broken", cache_dir=tmp_path))
    with pytest.raises(LLMError, match="HTTP 500"):
        enrich_catalogue(catalogue, docs, broken)
    nowhere = LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", cache_dir=tmp_path, timeout_s=2))
    with pytest.raises(LLMError, match="cannot reach"):
        nowhere.complete("hello")
    with pytest.raises(ConfigError):
        LLMSettings(base_url="ftp://x", model="m", cache_dir=tmp_path)
