"use strict";
// The page's search box: POST /search, results drawn with textContent only (nothing parsed as HTML).
(() => {
  const $ = (id) => document.getElementById(id);
  const ROOT = new URL(".", location.href.replace(/\/static\/[^/]*$/, "/"));
  let seq = 0;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = String(text);
    return node;
  }
  const fmt = (x) => (typeof x === "number" && isFinite(x)) ? Number(x.toPrecision(3)).toString() : "–";

  function chosenUser() {
    const typed = $("user-input") ? $("user-input").value.trim() : "";
    return $("search-personal").checked && typed !== "" ? typed : null;
  }

  function render(body) {
    const box = $("search-results");
    box.replaceChildren();
    const mode = body.mode + (body.personalised ? ", personalised" : "");
    $("search-who").textContent = `· "${body.query}" · ${mode} · ${fmt(body.latency_ms)} ms`;
    if (!body.items.length) { box.append(el("div", "muted", "Nothing found.")); return; }
    for (const it of body.items) {
      const card = el("div", "rec");
      card.setAttribute("data-testid", "search-result");
      card.setAttribute("data-item-id", String(it.item_id));
      const top = el("div", "top");
      top.append(el("span", "rank", "#" + it.rank), el("span", "title", it.title ?? it.item_id),
                 el("span", "score", "score " + fmt(it.score)));
      card.append(top, el("div", "id", "item " + it.item_id));
      box.append(card);
    }
  }

  async function search() {
    const query = $("search-input").value.trim();
    const mine = ++seq;
    $("search-panel").classList.remove("hidden");
    const box = $("search-results");
    if (query === "") { box.replaceChildren(el("div", "muted", "Type something to search for.")); return; }
    box.replaceChildren(el("span", "spinner"));
    const k = Number($("k-input").value) || 10;
    const payload = { query, k };
    const user = chosenUser();
    if (user != null) payload.user_id = user;
    let res, body;
    try {
      res = await fetch(new URL("search", ROOT), { method: "POST", body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json", "Accept": "application/json" } });
      body = await res.json();
    } catch (e) {
      res = { ok: false, status: 0 }; body = { detail: "network error: " + e.message };
    }
    if (mine !== seq) return;
    if (!res.ok) {
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
      box.replaceChildren(el("div", "banner error", `Search failed (HTTP ${res.status}): ${detail ?? ""}`));
      return;
    }
    render(body);
  }

  $("go-search").addEventListener("click", search);
  $("search-input").addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
})();
