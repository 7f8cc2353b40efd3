"""Compiled tree inference for request-sized batches (optional extra ``fast``: lleaves + llvmlite).

LightGBM walks its trees generically (node arrays, one comparison at a time); lleaves compiles a
model's trees to machine code through LLVM, thresholds baked in: a request scores several times
faster, equal to LightGBM's scores within 1e-14 (both traverse in double; see
``benchmarks/RESULTS.md``). Compiling takes seconds, so the object code is cached
under ``~/.cache/shortlist/compiled`` (``$XDG_CACHE_HOME`` honoured), keyed by the model text, the
compiler versions and the host CPU, written atomically behind its SHA-256 (LLVM aborts the process
on a damaged object file, so a file whose checksum fails is recompiled, never loaded); a compiled
forest that disagrees with LightGBM on a probe batch is discarded (LightGBM is used).
Without the extra, :func:`compile_booster` returns ``None`` and callers keep LightGBM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)
PROBE_ROWS = 64


class CompiledForest:
    """A LightGBM booster's trees as machine code: :meth:`predict` gives ``booster.predict``'s raw
    scores (float64) for a float64 C-ordered matrix, on the calling thread."""

    def __init__(self, model: Any, booster: Any, n_features: int) -> None:
        self.model, self.booster, self.n_features = model, booster, n_features

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected (rows × {self.n_features}) features, got {X.shape}")
        return np.asarray(self.model.predict(X, n_jobs=1), dtype=np.float64)


def available() -> bool:
    """Whether the ``fast`` extra (lleaves and a compatible llvmlite) is importable."""
    try:
        import lleaves  # noqa: F401
        import llvmlite.binding  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shortlist" / "compiled"


def compile_booster(booster: Any, *, num_iteration: int | None = None, cache: Path | None = None,
                    use_cache: bool = True) -> CompiledForest | None:
    """``booster`` (a ``lightgbm.Booster``) compiled, or ``None`` without the extra or on any failure
    (logged; the caller keeps LightGBM). ``cache``: the object-code folder (default :func:`cache_dir`)."""
    if not available():
        return None
    import lleaves
    import llvmlite
    import llvmlite.binding as llvm

    t0 = time.perf_counter()
    text = booster.model_to_string(num_iteration=num_iteration)
    digest = hashlib.sha256()
    for part in (text, lleaves.__version__ if hasattr(lleaves, "__version__") else "",
                 llvmlite.__version__, llvm.get_process_triple(), llvm.get_host_cpu_name(), _cpu_features(llvm)):
        digest.update(part.encode())
        digest.update(b"\0")
    folder = cache if cache is not None else cache_dir()
    target = folder / f"forest-{digest.hexdigest()[:32]}.o"
    n_features = int(booster.num_feature())
    with tempfile.TemporaryDirectory(prefix="shortlist-forest-") as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_text(text)
        forest = None
        cached = Path(tmp) / "cached.o"
        if use_cache and _load(target, cached):
            forest = _compile(lleaves, model_file, cached, booster, n_features)
            if forest is None:
                target.unlink(missing_ok=True)
        if forest is None:
            fresh = Path(tmp) / "forest.o"
            forest = _compile(lleaves, model_file, fresh if use_cache else None, booster, n_features)
            if forest is not None and use_cache and fresh.is_file():
                _store(fresh, target)
    if forest is not None and not _agrees(forest, booster, num_iteration):
        logger.warning("compiled ranker disagrees with LightGBM on a probe batch: using LightGBM")
        target.unlink(missing_ok=True)
        return None
    if forest is not None:
        logger.info("ranker compiled (%d features) in %.2f s", n_features, time.perf_counter() - t0)
    return forest


def _cpu_features(llvm: Any) -> str:
    try:
        return str(llvm.get_host_cpu_features().flatten())
    except RuntimeError:
        return ""


def _compile(lleaves: Any, model_file: Path, cache: Path | None, booster: Any, n_features: int) -> CompiledForest | None:
    try:
        model = lleaves.Model(model_file=str(model_file))
        model.compile(cache=None if cache is None else str(cache))
    except Exception as e:  # any compiler or loader failure: keep LightGBM
        logger.warning("could not compile the ranker (%s: %s): using LightGBM", type(e).__name__, e)
        return None
    if model.num_feature() != n_features:
        return None
    return CompiledForest(model, booster, n_features)


def _store(fresh: Path, target: Path) -> None:
    """Write the object code into the cache behind its SHA-256, atomically (a reader never sees half
    a file): LLVM aborts the process on a damaged object file, so :func:`_load` checks it first."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = fresh.read_bytes()
        part = target.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(hashlib.sha256(body).digest() + body)
        os.replace(part, target)
    except OSError as e:
        logger.info("compiled ranker not cached (%s)", e)


def _load(target: Path, out: Path) -> bool:
    """A cached object whose checksum holds, written to ``out`` for lleaves; a damaged one is removed."""
    try:
        blob = target.read_bytes()
    except OSError:
        return False
    if len(blob) > 32 and hashlib.sha256(blob[32:]).digest() == blob[:32]:
        out.write_bytes(blob[32:])
        return True
    logger.warning("%s: damaged compiled ranker removed (recompiling)", target)
    target.unlink(missing_ok=True)
    return False


def _agrees(forest: CompiledForest, booster: Any, num_iteration: int | None) -> bool:
    """Compiled and LightGBM scores equal (1e-9, relative to the score scale) on a probe batch that
    reaches many branches: standard-normal rows, some values missing (NaN) and some zero."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((PROBE_ROWS, forest.n_features)) * rng.choice([0.1, 1.0, 100.0], size=(PROBE_ROWS, 1))
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    want = np.asarray(booster.predict(X, num_iteration=num_iteration, num_threads=1), dtype=np.float64)
    try:
        got = forest.predict(X)
    except Exception:
        return False
    return bool(np.allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(want).max(initial=0.0)))))


__all__ = ["CompiledForest", "available", "cache_dir", "compile_booster"]
