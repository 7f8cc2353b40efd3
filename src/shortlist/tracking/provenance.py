"""What produced a run: the code's git commit and the versions of the packages that ran it."""

from __future__ import annotations

import subprocess
from contextlib import suppress
from importlib import metadata
from pathlib import Path

import shortlist
from shortlist import __version__
from shortlist.pipeline.artifacts import library_versions

UNKNOWN = "unknown"
#: MLflow's own tag for a run's code version (shown in its UI), plus whether the checkout had
#: uncommitted changes to tracked files.
COMMIT_TAG, DIRTY_TAG = "mlflow.source.git.commit", "shortlist.git_dirty"


def package_versions() -> dict[str, str]:
    """shortlist, MLflow, Python and the libraries a model depends on (those installed)."""
    import platform

    out = {"shortlist": __version__, "python": platform.python_version()}
    with suppress(metadata.PackageNotFoundError):
        out["mlflow"] = metadata.version("mlflow")
    return out | library_versions()


def code_version(package_dir: Path | None = None) -> dict[str, str]:
    """``{COMMIT_TAG: sha, DIRTY_TAG: "true"|"false"}`` when shortlist runs from a git checkout of its
    own source (an editable install), else both ``"unknown"``: an installed copy has no commit, and
    a git repository that merely contains the installation (a project's virtualenv) is not ours."""
    pkg = (package_dir or Path(shortlist.__file__).parent).resolve()
    top = _git(pkg, "rev-parse", "--show-toplevel")
    if top is None or not any((Path(top) / p).resolve() == pkg for p in ("src/shortlist", "shortlist")):
        return {COMMIT_TAG: UNKNOWN, DIRTY_TAG: UNKNOWN}
    commit = _git(pkg, "rev-parse", "HEAD") or UNKNOWN
    status = _git(pkg, "status", "--porcelain", "--untracked-files=no")
    return {COMMIT_TAG: commit, DIRTY_TAG: UNKNOWN if status is None else str(bool(status)).lower()}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
