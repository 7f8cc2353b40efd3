"""Training and encoding loops for :class:`TwoTowerNet` (torch imported lazily by the caller)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch convention)

from shortlist.retrieval.two_tower.data import Sequences
from shortlist.retrieval.two_tower.model import TwoTowerNet

logger = logging.getLogger(__name__)

Loss = Literal["softmax", "bpr"]
_ENCODE_CHUNK = 4096


@dataclass(frozen=True)
class TrainConfig:
    loss: Loss
    temperature: float
    logq: bool
    n_negatives: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    last_per_user: int | None
    max_history: int
    use_user_id: bool


@contextmanager
def torch_session(*, seed: int, n_threads: int) -> Iterator[None]:
    """Seed torch without touching its global RNG state and cap its threads; restore both afterwards.

    Every op used here is deterministic on CPU for a fixed thread count (tested), so a seed gives
    identical weights there without flipping the process-wide ``torch.use_deterministic_algorithms``.
    On CUDA, embedding backward may add in a different order between runs.
    """
    prev_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
        torch.manual_seed(seed)
        torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(prev_threads)


def train(
    net: TwoTowerNet, seqs: Sequences, cfg: TrainConfig, rng: np.random.Generator, device: torch.device
) -> list[float]:
    """Fit ``net`` on (history before t → item at t) pairs; returns the mean loss of each epoch."""
    users, pos = seqs.training_pairs(cfg.last_per_user)
    if not len(pos):
        logger.warning("two-tower: no user has two interactions; nothing to train on")
        return []
    n_items = net.pad
    targets = seqs.items[pos]
    # logQ correction: an item's chance to appear as an in-batch negative is its share of targets.
    log_q = torch.from_numpy(np.log(np.bincount(targets, minlength=n_items).clip(min=1) / len(targets)))
    log_q = log_q.to(device=device, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    net.train()
    losses = []
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(pos))
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            b = order[start : start + cfg.batch_size]
            hist = seqs.histories(users[b], pos[b], cfg.max_history, n_items)
            h = torch.from_numpy(hist).to(device)
            t = torch.from_numpy(targets[b]).to(device)
            uid = torch.from_numpy(users[b]).to(device) if cfg.use_user_id else None
            u = net.users(h, uid)
            if cfg.loss == "softmax":
                loss = _softmax_loss(u, net, t, log_q if cfg.logq else None, cfg.temperature)
            else:
                neg = torch.from_numpy(rng.integers(0, n_items, (len(b), cfg.n_negatives))).to(device)
                loss = _bpr_loss(u, net.items(t), net.items(neg), cfg.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        losses.append(total / len(order))
        logger.info("two-tower epoch %d/%d: %s loss %.4f", epoch + 1, cfg.epochs, cfg.loss, losses[-1])
    return losses


def _softmax_loss(
    u: torch.Tensor, net: TwoTowerNet, t: torch.Tensor, log_q: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    """In-batch sampled softmax over the batch's distinct positives (the other rows' are negatives).

    Scoring against distinct items means a row never treats its own item, repeated as another
    row's positive, as a negative, with no (batch × batch) mask.
    """
    distinct, label = torch.unique(t, return_inverse=True)
    logits = (u / temperature) @ net.items(distinct).T
    if log_q is not None:
        logits = logits - log_q[distinct]
    return F.cross_entropy(logits, label)


def _bpr_loss(u: torch.Tensor, v: torch.Tensor, neg: torch.Tensor, temperature: float) -> torch.Tensor:
    pos_score = (u * v).sum(-1, keepdim=True)
    neg_score = torch.einsum("bd,bnd->bn", u, neg)
    return -F.logsigmoid((pos_score - neg_score) / temperature).mean()


@torch.no_grad()
def encode_items(net: TwoTowerNet, device: torch.device) -> np.ndarray:
    """Item-tower vectors of every item (n_items × d, float32)."""
    net.eval()
    ids = torch.arange(net.pad, device=device)
    out = [net.items(ids[s : s + _ENCODE_CHUNK]).cpu() for s in range(0, net.pad, _ENCODE_CHUNK)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def encode_histories(
    net: TwoTowerNet, histories: np.ndarray, users: np.ndarray | None, device: torch.device
) -> np.ndarray:
    """User-tower vectors of padded histories (rows × d, float32); ``users`` adds the id embedding."""
    net.eval()
    out = []
    for s in range(0, len(histories), _ENCODE_CHUNK):
        h = torch.from_numpy(histories[s : s + _ENCODE_CHUNK]).to(device)
        uid = None if users is None else torch.from_numpy(users[s : s + _ENCODE_CHUNK]).to(device)
        out.append(net.users(h, uid).cpu())
    return torch.cat(out).numpy().astype(np.float32)
