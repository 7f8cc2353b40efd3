"""Static checks of the deployment files (no Docker needed): ``python deploy/check.py [--metrics-url URL]``.

- docker-compose.yml, the Prometheus config and the Grafana provisioning files parse, and point at
  each other (service names, ports, mounted files that exist);
- docker-compose.yml has no default password and publishes nothing beyond loopback by default (the
  API key and Grafana's password are Docker secrets);
- the dashboard JSON parses, panel ids are unique, and every ``shortlist_*`` series and every label
  its queries use is one the service exports: taken from the service's own metrics registry
  (``shortlist.serving.metrics.ServiceMetrics``), or from a running service's ``/metrics`` with
  ``--metrics-url``.

Exits 1 and lists the problems when anything is off. Needs PyYAML.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy/grafana/dashboards/shortlist.json"
ALWAYS_LABELS = {"le", "instance", "job", "service"}  # added by Prometheus / the scrape config / histograms


def exported_from_registry() -> dict[str, set[str] | None]:
    """Series name -> label names, from the service's own registry."""
    from shortlist.serving.metrics import ServiceMetrics

    out: dict[str, set[str] | None] = {}
    for collector in ServiceMetrics().registry._collector_to_names:  # every registered metric
        name, kind = collector._name, collector._type  # type: ignore[attr-defined]
        labels = set(collector._labelnames)  # type: ignore[attr-defined]
        suffixes = {"histogram": ["_bucket", "_count", "_sum"], "counter": ["_total"]}.get(kind, [""])
        for s in suffixes:
            out[name + s] = labels | ({"le"} if s == "_bucket" else set())
    return out


def exported_from_url(url: str) -> dict[str, set[str] | None]:
    """Series name -> label names, from a running service's ``/metrics`` (``# TYPE`` lines and samples).

    A labelled metric with no samples yet shows no labels: its labels are not checked.
    """
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out: dict[str, set[str] | None] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            for s in {"histogram": ["_bucket", "_count", "_sum"], "counter": [""]}.get(kind, [""]):
                out.setdefault(name + s, None)
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s", line)
            if m:
                labels = set(re.findall(r'(\w+)="', m.group(2) or ""))
                out[m.group(1)] = (out.get(m.group(1)) or set()) | labels
    return out


def check_dashboard(exported: dict[str, set[str] | None]) -> list[str]:
    problems = []
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"dashboard: duplicate panel ids {ids}")
    queries: list[tuple[str, str, str]] = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            queries.append((p["title"], t["expr"], t.get("legendFormat", "")))
    for v in dash.get("templating", {}).get("list", []):
        queries.append((f"variable {v['name']}", v["definition"], ""))
    for title, expr, legend in queries:
        series = set(re.findall(r"\bshortlist_\w+", expr))
        if not series:
            problems.append(f"dashboard panel {title!r}: no shortlist_ series in {expr!r}")
        missing = series - exported.keys()
        if missing:
            problems.append(f"dashboard panel {title!r}: series not exported by the service: {sorted(missing)}")
            continue
        if any(exported[s] is None for s in series):
            continue  # labels not known (no samples yet)
        known = set().union(*(exported[s] or set() for s in series)) | ALWAYS_LABELS
        used = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)\s*\"", expr))
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            used |= {x.strip() for x in group.split(",") if x.strip()}
        used |= set(re.findall(r"label_values\(\s*\w+\s*,\s*(\w+)\s*\)", expr))
        used |= set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        if used - known:
            problems.append(f"dashboard panel {title!r}: labels {sorted(used - known)} not on {sorted(series)}")
    return problems


def check_promql_with_promtool() -> list[str]:
    """Every dashboard query parses as PromQL (``promtool check rules`` on them as recording rules), when
    promtool is installed; ``promtool check config`` on the scrape config."""
    promtool = shutil.which("promtool")
    if promtool is None:
        print("skip: promtool not installed (Debian package `prometheus`): PromQL syntax not checked")
        return []
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    rules = [{"record": f"shortlist_dashboard:query{i}",
              "expr": e.replace("$__rate_interval", "1m").replace("$endpoint", ".*")} for i, e in enumerate(exprs)]
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard_rules.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        for args in (["check", "rules", str(path)], ["check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")]):
            run = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
            if run.returncode != 0:
                problems.append(f"promtool {args[1]}: {(run.stdout + run.stderr).strip()}")
    if not problems:
        print(f"ok: promtool parsed {len(exprs)} dashboard queries and the scrape config")
    return problems


def check_compose_and_configs() -> list[str]:
    problems = []
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services", {})
    for name in ("api", "redis", "prometheus", "grafana"):
        if name not in services:
            problems.append(f"docker-compose.yml: no {name!r} service")
    api_cmd = services.get("api", {}).get("command", [])
    if "--redis-url" not in api_cmd or "redis://redis:6379/0" not in api_cmd:
        problems.append("docker-compose.yml: the api does not use redis://redis:6379/0")
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./deploy") and not (ROOT / src).exists():
                problems.append(f"docker-compose.yml: mounted {src} does not exist")
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = prom.get("scrape_configs", [])
    targets = [t for j in jobs for sc in j.get("static_configs", []) for t in sc.get("targets", [])]
    if "api:8000" not in targets or any(j.get("metrics_path", "/metrics") != "/metrics" for j in jobs):
        problems.append(f"prometheus.yml: expected a /metrics scrape of api:8000, got {targets}")
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d.get("uid") for d in ds.get("datasources", [])}
    dash_uids = {t["datasource"]["uid"] for p in json.loads(DASHBOARD.read_text())["panels"]
                 for t in p.get("targets", [])}
    if not dash_uids <= uids:
        problems.append(f"dashboard datasource uids {dash_uids} not provisioned ({uids})")
    if not any(d.get("url") == "http://prometheus:9090" for d in ds.get("datasources", [])):
        problems.append("grafana datasource does not point at http://prometheus:9090")
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/shortlist.yml").read_text())
    paths = [p["options"]["path"] for p in prov.get("providers", [])]
    grafana_vols = services.get("grafana", {}).get("volumes", [])
    if not any(v.split(":")[1] in paths for v in grafana_vols if v.startswith("./deploy/grafana/dashboards")):
        problems.append(f"grafana: dashboards provider path {paths} is not where the dashboards are mounted")
    return problems


def check_compose_security() -> list[str]:
    """No default passwords and nothing published beyond loopback by default (issue 18): the API reads
    its key from a Docker secret, Grafana its admin password from one, every port binds 127.0.0.1."""
    problems = []
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services", {})
    secrets = compose.get("secrets", {})
    api_cmd = services.get("api", {}).get("command", [])
    if "--api-key-file" not in api_cmd or "shortlist_api_key" not in services.get("api", {}).get("secrets", []):
        problems.append("docker-compose.yml: the api does not read its key from the shortlist_api_key secret")
    env = services.get("grafana", {}).get("environment", {})
    if "GF_SECURITY_ADMIN_PASSWORD" in env or "GF_SECURITY_ADMIN_PASSWORD__FILE" not in env:
        problems.append("docker-compose.yml: grafana's admin password must come from a secret (…__FILE), no default")
    for name, spec in secrets.items():
        if "file" not in spec:
            problems.append(f"docker-compose.yml: secret {name} has no file")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host = str(port).rsplit(":", 2)[0] if str(port).count(":") >= 2 else "0.0.0.0"
            if host not in ("127.0.0.1", "${SHORTLIST_BIND:-127.0.0.1}"):
                problems.append(f"docker-compose.yml: {name} publishes {port} beyond loopback by default")
    if not any(line.strip() in ("/secrets/", "secrets/") for line in (ROOT / ".gitignore").read_text().splitlines()):
        problems.append(".gitignore: secrets/ (the compose secrets) is not ignored")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics-url", help="a running service's /metrics (default: the service's registry)")
    args = parser.parse_args()
    exported = exported_from_url(args.metrics_url) if args.metrics_url else exported_from_registry()
    problems = (check_compose_and_configs() + check_compose_security() + check_dashboard(exported)
                + check_promql_with_promtool())
    for p in problems:
        print("FAIL", p)
    if not problems:
        n = len(json.loads(DASHBOARD.read_text())["panels"])
        print(f"ok: compose, prometheus, grafana provisioning, dashboard ({n} panels) against "
              f"{args.metrics_url or 'ServiceMetrics'} ({len(exported)} series)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
