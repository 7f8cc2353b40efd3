"""The two towers as torch modules (imported lazily: torch is an optional extra)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)
from torch import nn

from shortlist.retrieval.two_tower.data import ItemFeatures

Pooling = Literal["mean", "recency", "attention"]
_INIT_STD = 0.1


class ResidualMLP(nn.Module):
    """``x + W2·relu(W1·x)``: starts near the identity, so id embeddings work from the first step."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class TwoTowerNet(nn.Module):
    """Item tower ``MLP(id + category + price bucket + text)``; user tower ``MLP(pool(history) [+ user id])``.

    Both towers share the item input embedding, so a history of any items (including ad-hoc ones)
    maps into the same space. Index ``n_items`` is the padding item.
    """

    category: torch.Tensor  # buffers (declared for the type checker)
    price_bucket: torch.Tensor
    text: torch.Tensor

    def __init__(
        self,
        *,
        n_items: int,
        n_users: int,
        features: ItemFeatures,
        dim: int,
        hidden: int,
        max_history: int,
        pooling: Pooling,
        normalize: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad, self.pooling, self.normalize = n_items, pooling, normalize
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.register_buffer("category", torch.from_numpy(features.category), persistent=False)
        self.register_buffer("price_bucket", torch.from_numpy(features.price_bucket), persistent=False)
        self.cat_emb = nn.Embedding(features.n_categories, dim) if features.n_categories > 1 else None
        self.price_emb = nn.Embedding(features.n_price_buckets, dim) if features.n_price_buckets > 1 else None
        self.text_proj: nn.Linear | None = None
        if features.text is not None:
            self.register_buffer("text", torch.from_numpy(features.text), persistent=False)
            self.text_proj = nn.Linear(features.text.shape[1], dim, bias=False)
        self.user_emb = nn.Embedding(n_users, dim) if n_users else None
        self.pos_logit = nn.Parameter(torch.zeros(max_history))
        self.att = nn.Linear(dim, 1) if pooling == "attention" else None
        self.item_mlp = ResidualMLP(dim, hidden, dropout)
        self.user_mlp = ResidualMLP(dim, hidden, dropout)
        for emb in (self.item_emb, self.cat_emb, self.price_emb, self.user_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=_INIT_STD)
        with torch.no_grad():
            self.item_emb.weight[n_items].zero_()

    def item_input(self, items: torch.Tensor) -> torch.Tensor:
        """The shared per-item input vector: id + category + price bucket + projected text."""
        x = self.item_emb(items)
        if self.cat_emb is not None:
            x = x + self.cat_emb(self.category[items])
        if self.price_emb is not None:
            x = x + self.price_emb(self.price_bucket[items])
        if self.text_proj is not None:
            x = x + self.text_proj(self.text[items])
        return x

    def _rows(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(distinct items, each entry's index into them); the whole catalogue if the batch is bigger.

        Item inputs and attention scores are computed once per distinct item and then gathered,
        far cheaper than running them on every (row, position) of a batch of histories.
        """
        if items.numel() > self.pad:
            return torch.arange(self.pad + 1, device=items.device), items
        distinct, index = torch.unique(items, return_inverse=True)
        return distinct, index

    def _out(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if self.normalize else x

    def items(self, items: torch.Tensor) -> torch.Tensor:
        return self._out(self.item_mlp(self.item_input(items)))

    def users(self, history: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """User vectors from right-aligned padded histories (B × N); ``users`` adds the id embedding."""
        distinct, index = self._rows(history)
        x = self.item_input(distinct)
        mask = history != self.pad
        logits = torch.zeros(history.shape, dtype=x.dtype, device=x.device)
        if self.pooling != "mean":
            logits = logits + self.pos_logit[-history.shape[1]:]
        if self.att is not None:
            logits = logits + self.att(torch.tanh(x)).squeeze(-1)[index]
        # -1e9 instead of -inf: an all-padding row gets weights 0, not NaN.
        w = torch.softmax(logits.masked_fill(~mask, -1e9), dim=1) * mask
        pooled = F.embedding_bag(index, x, per_sample_weights=w, mode="sum")
        if self.user_emb is not None and users is not None:
            n = self.user_emb.num_embeddings
            known = ((users >= 0) & (users < n)).unsqueeze(-1)
            pooled = pooled + self.user_emb(users.clamp(0, n - 1)) * known
        return self._out(self.user_mlp(pooled))
