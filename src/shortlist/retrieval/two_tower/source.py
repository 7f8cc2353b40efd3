"""``TwoTower``: a user tower over recent history and an item tower over id + content, searched by vector."""

from __future__ import annotations

import importlib
import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, get_args

import numpy as np
import scipy.sparse as sp

from shortlist.data.containers import Interactions, Items
from shortlist.errors import ConfigError, DependencyMissingError
from shortlist.index import VectorIndex
from shortlist.retrieval.base import (
    State,
    check_k,
    csr_from_arrays,
    csr_to_arrays,
    history_row,
    require_fitted,
    seen_rows,
)
from shortlist.retrieval.two_tower import data

if TYPE_CHECKING:
    from shortlist.retrieval.two_tower.model import TwoTowerNet

logger = logging.getLogger(__name__)

Loss = Literal["softmax", "bpr"]
Pooling = Literal["mean", "recency", "attention"]
_WEIGHT = "w."


def import_torch() -> ModuleType:
    """torch, imported on first use so that the package imports without the optional extra."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise DependencyMissingError("torch", "torch", "the two-tower source") from exc


class TwoTower:
    """Two-tower retrieval: ``user_tower(last items) · item_tower(item)``, trained on next-item pairs.

    The item tower embeds the item id plus, when ``fit`` gets an ``Items`` catalogue, its category
    and log-price bucket, plus optional precomputed ``item_features`` (e.g. text embeddings). The
    user tower pools the same item inputs over the user's last ``max_history`` items (``"mean"``,
    learned ``"recency"`` weights, or ``"attention"`` = recency + content scores), optionally adding
    a user-id embedding. ``loss="softmax"`` is in-batch sampled softmax with logQ correction;
    ``"bpr"`` uses ``n_negatives`` uniform negatives. Vectors are L2-normalised when ``normalize``
    (then ``metric == "cosine"``, else ``"ip"``) and searched with :class:`VectorIndex`.

    ``n_threads`` caps torch's CPU threads during ``fit`` (restored afterwards; ``None`` keeps
    torch's setting). The default is 1: the ops are small, and on a machine whose cores are shared,
    extra intra-op threads were measured to make training many times slower, not faster.
    ``device="auto"`` trains on CUDA when available. The same ``rng`` seed gives identical weights
    on CPU.
    """

    #: Fitted state indexed by user (split per shard: :mod:`shortlist.pipeline.user_rows`).
    USER_ROWS: ClassVar[tuple[str, ...]] = ("user_vectors_", "has_history_", "seen_")

    def __init__(
        self,
        *,
        dim: int = 64,
        hidden: int = 128,
        max_history: int = 50,
        pooling: Pooling = "attention",
        use_user_id: bool = False,
        loss: Loss = "softmax",
        temperature: float = 0.05,
        logq: bool = True,
        n_negatives: int = 4,
        normalize: bool = True,
        epochs: int = 5,
        batch_size: int = 1024,
        lr: float = 4e-3,
        weight_decay: float = 0.0,
        dropout: float = 0.0,
        last_per_user: int | None = 100,
        n_price_buckets: int = 10,
        device: str = "auto",
        n_threads: int | None = 1,
        name: str = "two_tower",
    ) -> None:
        if loss not in get_args(Loss):
            raise ConfigError(f"loss must be one of {get_args(Loss)}, got {loss!r}")
        if pooling not in get_args(Pooling):
            raise ConfigError(f"pooling must be one of {get_args(Pooling)}, got {pooling!r}")
        for label, v in (("dim", dim), ("hidden", hidden), ("max_history", max_history), ("epochs", epochs),
                         ("batch_size", batch_size), ("n_negatives", n_negatives),
                         ("last_per_user", last_per_user or 1), ("n_threads", n_threads or 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{label} must be a positive integer, got {v!r}")
        if temperature <= 0 or lr <= 0 or weight_decay < 0 or not 0 <= dropout < 1 or n_price_buckets < 0:
            raise ConfigError("temperature and lr must be > 0, weight_decay and n_price_buckets >= 0, "
                              "dropout in [0, 1)")
        self.dim, self.hidden, self.max_history, self.pooling = dim, hidden, max_history, pooling
        self.use_user_id, self.loss, self.temperature, self.logq = use_user_id, loss, temperature, logq
        self.n_negatives, self.normalize, self.epochs = n_negatives, normalize, epochs
        self.batch_size, self.lr, self.weight_decay, self.dropout = batch_size, lr, weight_decay, dropout
        self.last_per_user, self.n_price_buckets = last_per_user, n_price_buckets
        self.device, self.n_threads, self.name = device, n_threads, name
        self.item_vectors_: np.ndarray | None = None
        self.user_vectors_: np.ndarray | None = None
        self.has_history_: np.ndarray | None = None
        self.seen_: sp.csr_matrix | None = None
        self.features_: data.ItemFeatures | None = None
        self.weights_: dict[str, np.ndarray] | None = None
        self.losses_: list[float] = []
        self.index_: VectorIndex | None = None
        self._net: TwoTowerNet | None = None

    @property
    def metric(self) -> Literal["ip", "cosine"]:
        """The similarity the vectors were trained with (and are searched by)."""
        return "cosine" if self.normalize else "ip"

    def _hyper(self) -> dict[str, Any]:
        names = ("dim", "hidden", "max_history", "pooling", "use_user_id", "loss", "temperature", "logq",
                 "n_negatives", "normalize", "epochs", "batch_size", "lr", "weight_decay", "dropout",
                 "last_per_user", "n_price_buckets", "device", "n_threads", "name")
        return {n: getattr(self, n) for n in names}

    # -- fit ---------------------------------------------------------------------------------
    def fit(
        self,
        history: Interactions,
        *,
        items: Items | None = None,
        item_features: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> Self:
        """Train both towers on ``history`` (with an optional catalogue / per-item feature matrix)."""
        torch = import_torch()
        from shortlist.retrieval.two_tower import train

        rng = rng if rng is not None else np.random.default_rng(0)
        seqs = data.Sequences.from_interactions(history)
        self.features_ = data.item_features(history.n_items, items, item_features,
                                            n_price_buckets=self.n_price_buckets)
        device = self._device(torch)
        threads = self.n_threads or torch.get_num_threads()
        cfg = train.TrainConfig(
            self.loss, self.temperature, self.logq, self.n_negatives, self.epochs, self.batch_size, self.lr,
            self.weight_decay, self.last_per_user, self.max_history, self.use_user_id,
        )
        seed = int(rng.integers(2**62))
        with train.torch_session(seed=seed, n_threads=threads):
            net = self._build(history.n_items, history.n_users).to(device)
            self.losses_ = train.train(net, seqs, cfg, rng, device)
            self.item_vectors_ = train.encode_items(net, device)
            lengths = np.diff(seqs.indptr)
            active = np.flatnonzero(lengths > 0)
            hist = seqs.last_histories(active, self.max_history, history.n_items)
            self.user_vectors_ = np.zeros((history.n_users, self.dim), np.float32)
            if len(active):
                ids = active if self.use_user_id else None
                self.user_vectors_[active] = train.encode_histories(net, hist, ids, device)
        self.has_history_ = lengths > 0
        self.weights_ = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        self.seen_ = history.to_csr(binary=True)
        self._net = net
        self._build_index()
        return self

    def _device(self, torch: ModuleType) -> Any:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            msg = f"device {self.device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'"
            raise ConfigError(msg) from exc

    def _build(self, n_items: int, n_users: int) -> TwoTowerNet:
        from shortlist.retrieval.two_tower.model import TwoTowerNet

        assert self.features_ is not None
        return TwoTowerNet(
            n_items=n_items, n_users=n_users if self.use_user_id else 0, features=self.features_,
            dim=self.dim, hidden=self.hidden, max_history=self.max_history, pooling=self.pooling,
            normalize=self.normalize, dropout=self.dropout,
        )

    def _build_index(self) -> None:
        assert self.item_vectors_ is not None
        self.index_ = VectorIndex(metric=self.metric).build(self.item_vectors_)

    def _network(self) -> TwoTowerNet:
        """The trained network, rebuilt from the saved weights after ``from_state``."""
        if self._net is None:
            torch = import_torch()
            assert self.weights_ is not None and self.user_vectors_ is not None
            assert self.item_vectors_ is not None
            users = self.weights_.get("user_emb.weight")  # the trained users, also in a shard's split copy
            net = self._build(len(self.item_vectors_), 0 if users is None else len(users))
            net.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights_.items()})
            self._net = net.to(self._device(torch)).eval()
        return self._net

    # -- retrieve ----------------------------------------------------------------------------
    def topk(self, users: np.ndarray, k: int, *, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(len(users) × k) items and scores, best first, padded -1 / -inf (what :meth:`retrieve` lists)."""
        check_k(k)
        require_fitted(self, "item_vectors_")
        assert self.has_history_ is not None and self.user_vectors_ is not None and self.seen_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        known = (users >= 0) & (users < len(self.has_history_))
        known[known] = self.has_history_[users[known]]
        q = users[known]
        items = np.full((len(users), k), -1, np.int64)
        scores = np.full((len(users), k), -np.inf, np.float32)
        if len(q):
            items[known], scores[known] = self._search(self.user_vectors_[q], k, seen_rows(self.seen_, q, exclude_seen))
        return items, scores

    def topk_for_history(
        self, items: np.ndarray, k: int, *, timestamps: np.ndarray | None = None, exclude_seen: bool = True,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the user tower on an ad-hoc history (user id -1 in the result)."""
        check_k(k)
        require_fitted(self, "item_vectors_")
        assert self.item_vectors_ is not None
        from shortlist.retrieval.two_tower.train import encode_histories

        n_items = len(self.item_vectors_)
        hist = data.adhoc_history(items, timestamps, self.max_history, n_items, n_items)
        if (hist == n_items).all():
            return np.full((1, k), -1, np.int64), np.full((1, k), -np.inf, np.float32)
        net = self._network()
        vec = encode_histories(net, hist, None, next(net.parameters()).device)
        return self._search(vec, k, history_row(items, n_items) if exclude_seen else None)

    def _search(self, vectors: np.ndarray, k: int, exclude: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        assert self.index_ is not None
        ids, scores = self.index_.search(vectors, k, exclude=exclude)
        items = np.full((len(vectors), k), -1, np.int64)
        vals = np.full((len(vectors), k), -np.inf, np.float32)
        width = min(k, ids.shape[1])
        items[:, :width], vals[:, :width] = ids[:, :width], scores[:, :width]
        return items, vals

    # -- embeddings ----------------------------------------------------------------------------
    def item_embeddings(self) -> np.ndarray:
        """(n_items × dim) float32 item-tower vectors, compared with :attr:`metric`."""
        require_fitted(self, "item_vectors_")
        assert self.item_vectors_ is not None
        return self.item_vectors_

    def user_embeddings(self, users: np.ndarray) -> np.ndarray:
        """(len(users) × dim) user-tower vectors from fit-time histories; zeros for unknown users."""
        require_fitted(self, "user_vectors_")
        assert self.user_vectors_ is not None
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        known = (users >= 0) & (users < len(self.user_vectors_))
        out = np.zeros((len(users), self.dim), np.float32)
        out[known] = self.user_vectors_[users[known]]
        return out

    # -- state ---------------------------------------------------------------------------------
    def get_state(self) -> State:
        require_fitted(self, "item_vectors_")
        f, w = self.features_, self.weights_
        assert f is not None and w is not None and self.seen_ is not None and self.has_history_ is not None
        assert self.item_vectors_ is not None and self.user_vectors_ is not None
        params = {**self._hyper(), "n_categories": f.n_categories, "n_price_buckets_": f.n_price_buckets,
                  "losses_": self.losses_}
        arrays = {"item_vectors": self.item_vectors_, "user_vectors": self.user_vectors_,
                  "has_history": self.has_history_, "category": f.category, "price_bucket": f.price_bucket,
                  **({"text": f.text} if f.text is not None else {}), **csr_to_arrays("seen", self.seen_),
                  **{_WEIGHT + k: v for k, v in w.items()}}
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Self:
        hyper = {k: v for k, v in params.items() if k not in ("n_categories", "n_price_buckets_", "losses_")}
        obj = cls(**hyper)
        obj.features_ = data.ItemFeatures(arrays["category"], arrays["price_bucket"], arrays.get("text"),
                                     int(params["n_categories"]), int(params["n_price_buckets_"]))
        obj.weights_ = {k[len(_WEIGHT):]: v for k, v in arrays.items() if k.startswith(_WEIGHT)}
        obj.item_vectors_, obj.user_vectors_ = arrays["item_vectors"], arrays["user_vectors"]
        obj.has_history_ = arrays["has_history"].astype(bool)
        obj.seen_ = csr_from_arrays("seen", arrays)
        obj.losses_ = list(params.get("losses_", []))
        obj._build_index()
        return obj
