"""Exact search with torch (`torch.mm` + `torch.topk` over query blocks), on CUDA when available."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

import numpy as np

from shortlist.errors import DependencyMissingError
from shortlist.index._exact import auto_chunk
from shortlist.index._topk import F32, I64, Exclusion, order_topk, topk_block
from shortlist.index.errors import IndexConfigError


def import_torch(what: str = "the 'torch' index backend") -> ModuleType:
    """Import torch lazily so that it stays an optional extra."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise DependencyMissingError("torch", "torch", what) from exc


def torch_available() -> bool:
    try:
        import_torch()
    except DependencyMissingError:
        return False
    return True


#: Device nodes a GPU torch build needs (NVIDIA, AMD ROCm, WSL): without any of them there is no
#: device to find, and importing torch just to ask (1.5-3 s) is skipped.
GPU_DEVICE_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (never raises)."""
    if "torch" not in sys.modules and not any(os.path.exists(p) for p in GPU_DEVICE_PATHS):
        return False
    try:
        torch = import_torch()
    except DependencyMissingError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    torch = import_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise IndexConfigError(
            f"device: {device!r} is not a torch device. Fix: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise IndexConfigError(
            f"device: {device!r} was requested but torch sees no CUDA device. Fix: use device='auto' or 'cpu'."
        )
    return device


class TorchExact:
    """Brute-force search in torch; exclusions are written into the score block as -inf."""

    name = "torch"

    def __init__(self, vectors: F32, *, chunk_size: int | None, device: str) -> None:
        self._torch = import_torch()
        self.device = resolve_device(device)
        self._n = vectors.shape[0]
        self._items: Any = self._torch.from_numpy(vectors).to(self.device)
        self._chunk = auto_chunk(self._n, chunk_size)

    def search(self, queries: F32, k: int, exclusion: Exclusion | None) -> tuple[I64, F32]:
        torch = self._torch
        n_q = queries.shape[0]
        k_eff = min(k, self._n)
        pos = np.empty((n_q, k_eff), dtype=np.int64)
        scores = np.empty((n_q, k_eff), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, n_q, self._chunk):
                stop = min(start + self._chunk, n_q)
                q = torch.from_numpy(queries[start:stop]).to(self.device)
                block = torch.mm(q, self._items.T)
                if exclusion is not None:
                    rows, cols = exclusion.block(start, stop)
                    if rows.size:
                        block[torch.from_numpy(rows).to(self.device), torch.from_numpy(cols).to(self.device)] = float(
                            "-inf"
                        )
                pos[start:stop], scores[start:stop] = self._topk(block, k_eff)
        return pos, scores

    def _topk(self, block: Any, k: int) -> tuple[I64, F32]:
        n = block.shape[1]
        if k == n:
            return topk_block(block.cpu().numpy(), k)
        # one extra result reveals a tie at the k-th score, which torch.topk breaks arbitrarily;
        # those (rare) rows are redone exactly on the CPU
        vals, idx = self._torch.topk(block, k + 1, dim=1, largest=True, sorted=True)
        tied = (vals[:, k] == vals[:, k - 1]).nonzero().flatten()
        pos = idx[:, :k].cpu().numpy().astype(np.int64)
        out = vals[:, :k].cpu().numpy().astype(np.float32)
        if tied.numel():
            rows = tied.cpu().numpy()
            pos[rows], out[rows] = topk_block(block[tied].cpu().numpy(), k)
        return order_topk(pos, out, k)
