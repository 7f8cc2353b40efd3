"""The compose stack has no default password and publishes nothing beyond loopback (deploy/check.py)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[2]


def load_check(root: Path):
    spec = importlib.util.spec_from_file_location("deploy_check", ROOT / "deploy" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ROOT = root
    return module


def test_the_shipped_compose_file_passes():
    assert load_check(ROOT).check_compose_security() == []


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda c: c["services"]["grafana"]["environment"].update(GF_SECURITY_ADMIN_PASSWORD="admin"),
     "grafana's admin password"),
    (lambda c: c["services"]["api"].update(ports=["8000:8000"]), "api publishes 8000:8000 beyond loopback"),
    (lambda c: c["services"]["prometheus"].update(ports=["0.0.0.0:9090:9090"]), "prometheus publishes"),
    (lambda c: c["services"]["api"].update(command=["shortlist", "serve", "--model", "/model"]),
     "does not read its key"),
])
def test_an_insecure_compose_file_is_flagged(tmp_path, edit, problem):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    edit(compose)
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(compose))
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    problems = load_check(tmp_path).check_compose_security()
    assert any(problem in p for p in problems), problems
