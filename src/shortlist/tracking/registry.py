"""The model registry: log a fitted model as a pyfunc, register it under an alias, and bring a
registered version (``models:/NAME@alias`` or ``models:/NAME/VERSION``) back as a local model
directory in shortlist's own format."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shortlist import __version__
from shortlist.errors import ConfigError, ModelLoadError
from shortlist.pipeline.artifacts import MANIFEST
from shortlist.tracking._mlflow import mlflow_module
from shortlist.tracking.run import TrackedRun
from shortlist.tracking.store import client

#: Where a run keeps its pyfunc (``runs:/<run id>/model``).
MODEL_PATH = "model"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


@dataclass(frozen=True)
class Registered:
    name: str
    version: int
    alias: str | None

    def __str__(self) -> str:
        return f"models:/{self.name}/{self.version}" + (f" (models:/{self.name}@{self.alias})" if self.alias else "")


def log_model(run: TrackedRun, model_dir: Path, *, metadata: dict[str, Any] | None = None) -> bool:
    """Log ``model_dir`` as the run's pyfunc under :data:`MODEL_PATH` (models from code: nothing
    pickled); ``False`` when the run is inactive or logging failed."""
    def save_and_log(c: Any, run_id: str) -> bool:
        with tempfile.TemporaryDirectory(prefix="shortlist-pyfunc-") as tmp:
            path = Path(tmp) / MODEL_PATH
            _save_pyfunc(path, model_dir, metadata)
            c.log_artifacts(run_id, str(path), MODEL_PATH)
        return True

    return bool(run.call(save_and_log))


def warm_model_saving() -> None:
    """Save a pyfunc without a model once, into a temporary folder: MLflow's first save in a process
    checks the requirements against every installed package (seconds on a full environment), so
    doing it while the fit runs leaves the real save quick."""
    with tempfile.TemporaryDirectory(prefix="shortlist-pyfunc-") as tmp:
        _save_pyfunc(Path(tmp) / MODEL_PATH, None, None)


def _save_pyfunc(path: Path, model_dir: Path | None, metadata: dict[str, Any] | None) -> None:
    from shortlist.tracking.pyfunc import ARTIFACT_KEY, MODEL_CODE

    mlflow_module()
    from mlflow import pyfunc

    with warnings.catch_warnings():
        # An input example would make MLflow load the model and predict while saving it.
        warnings.filterwarnings("ignore", message=".*input example was not provided", category=UserWarning)
        pyfunc.save_model(str(path), python_model=str(MODEL_CODE),
                          artifacts={ARTIFACT_KEY: str(model_dir)} if model_dir is not None else None,
                          signature=_signature(), pip_requirements=[f"shortlist=={__version__}"], metadata=metadata)


def _signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from shortlist.tracking.pyfunc import DEFAULT_K

    rows = Schema([ColSpec("string", "user_id"), ColSpec("string", "item_id"), ColSpec("integer", "rank"),
                   ColSpec("float", "score")])
    return ModelSignature(inputs=Schema([ColSpec("string", "user_id")]), outputs=rows,
                          params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]))


def register(run: TrackedRun, name: str, alias: str | None) -> Registered | None:
    """A new version of ``name`` from the run's pyfunc, with ``alias`` pointed at it (aliases, not
    the deprecated stages); ``None`` when the run is inactive or the registry refused."""
    def create(c: Any, run_id: str) -> Registered:
        mlflow = mlflow_module()
        try:
            c.create_registered_model(name, description="shortlist two-stage recommender (pyfunc: user_id in, "
                                                        "user_id, item_id, rank, score out)")
        except mlflow.exceptions.MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = c.create_model_version(name, source=f"runs:/{run_id}/{MODEL_PATH}", run_id=run_id)
        if alias is not None:
            c.set_registered_model_alias(name, alias, version.version)
        return Registered(name, int(version.version), alias)

    return run.call(create)


def is_model_uri(text: str) -> bool:
    return text.startswith("models:/")


def fetch_model(uri: str, *, tracking_uri: str, cache_dir: Path) -> Path:
    """The local model directory of a registered version, downloaded once into ``cache_dir``.

    A version's files never change, so the copy is kept by store, name and version and reused;
    it is written to a temporary folder and renamed, so a present copy is complete (and its
    checksums are verified again when it is loaded).
    """
    match = _MODEL_URI.match(uri)
    if match is None:
        raise ConfigError(f"--model {uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION "
                          "(e.g. models:/shortlist@champion)")
    c = client(tracking_uri)
    name, alias = match["name"], match["alias"]
    version = _version(c, uri, name, alias, match["version"], tracking_uri)
    source = c.get_model_version_download_uri(name, version)
    key = hashlib.sha256(f"{tracking_uri}\n{source}".encode()).hexdigest()[:12]
    target = Path(cache_dir) / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-v{version}-{key}"
    if (target / MANIFEST).is_file():
        return target
    _download(source, tracking_uri, target)
    return target


def _version(c: Any, uri: str, name: str, alias: str | None, version: str | None, tracking_uri: str) -> str:
    mlflow = mlflow_module()
    try:
        found = c.get_model_version_by_alias(name, alias) if alias else c.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as e:
        raise ModelLoadError(f"--model {uri}: not found in the registry at {tracking_uri} ({e.message}); list "
                             f"versions with the MLflow UI or pass --tracking-uri of the store it was registered in") from e
    return str(found.version)


def _download(source: str, tracking_uri: str, target: Path) -> None:
    """The pyfunc's shortlist model directory (its MLmodel names where) into ``target``."""
    mlflow = mlflow_module()
    from mlflow.models import Model

    from shortlist.tracking.pyfunc import ARTIFACT_KEY

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        mlmodel = mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/MLmodel", dst_path=str(staging / "meta"),
                                                      tracking_uri=tracking_uri)
        artifacts = Model.load(mlmodel).flavors.get("python_function", {}).get("artifacts", {})
        if ARTIFACT_KEY not in artifacts:
            raise ModelLoadError(f"{source}: not a shortlist model (its MLmodel has no {ARTIFACT_KEY!r} artifact)")
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{source}/{artifacts[ARTIFACT_KEY]['path']}",
                                                    dst_path=str(staging / "files"), tracking_uri=tracking_uri)
        try:
            os.replace(local, target)
        except OSError:
            if not (target / MANIFEST).is_file():  # else another process brought the same version first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
