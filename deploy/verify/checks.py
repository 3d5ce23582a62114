"""Cross-file checks of deploy/ that no linter does; run by deploy/verify/static.sh.

    python deploy/verify/checks.py yaml                 every YAML file under deploy/ parses
    python deploy/verify/checks.py nginx                covetd.conf agrees with covetd.yaml
    python deploy/verify/checks.py kubernetes           the manifests agree with each other
                                                        and with the ConfigMap's covetd YAML
    python deploy/verify/checks.py alerts-tested        each alert has a firing unit test
    python deploy/verify/checks.py metrics SCRAPE.txt   every metric and label the dashboard
                                                        and the alerts use is exported

Each prints what it checked, with the figures, and exits 1 on the first failed group.
Needs covetd importable (the project's venv) and PyYAML.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(ROOT))

from covetd.config import Config, load_config  # noqa: E402
from covetd.metrics.instruments import METRICS  # noqa: E402

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


# -- yaml --------------------------------------------------------------------------------


def cmd_yaml() -> None:
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))
    documents = 0
    for path in files:
        try:
            documents += sum(1 for d in yaml.safe_load_all(path.read_text()) if d is not None)
            check(True, f"{path.relative_to(ROOT)} parses")
        except yaml.YAMLError as exc:
            check(False, f"{path.relative_to(ROOT)}: {exc}")
    print(f"yaml: {len(files)} files, {documents} documents")


# -- nginx <-> covetd --------------------------------------------------------------------

_NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NGINX_TIMES = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "": 1}


def nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()  # type: ignore[union-attr]
    return int(number) * _NGINX_UNITS[unit.lower()]


def nginx_time(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|)", text).groups()  # type: ignore[union-attr]
    return int(number) * _NGINX_TIMES[unit]


def directives(conf: str) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for line in conf.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([a-z_0-9]+)\s+(.*?);", line)
        if match:
            found.setdefault(match[1], []).append(match[2].split())
    return found


def one(found: dict[str, list[list[str]]], name: str) -> list[str]:
    values = found.get(name, [])
    if len(values) != 1:
        raise SystemExit(f"nginx: expected one {name} directive, found {len(values)}")
    return values[0]


def cmd_nginx() -> None:
    conf = (DEPLOY / "nginx" / "covetd.conf").read_text()
    found = directives(conf)
    config = load_config(str(DEPLOY / "nginx" / "covetd.yaml"), environ={})
    http, ws = config.http, config.websocket
    body = nginx_size(one(found, "client_max_body_size")[0])
    check(
        body == http.max_body_size,
        f"client_max_body_size {body} B = http.max_body_size {http.max_body_size} B",
    )
    upstream = re.search(r"upstream\s+covetd\s*{(.*?)}", conf, re.S)
    assert upstream is not None
    up = directives(upstream[1])
    upstream_idle = nginx_time(one(up, "keepalive_timeout")[0])
    check(
        upstream_idle < http.keepalive_timeout,
        f"upstream keepalive_timeout {upstream_idle:g} s < http.keepalive_timeout "
        f"{http.keepalive_timeout:g} s",
    )
    check("keepalive" in up, f"upstream keepalive {one(up, 'keepalive')[0]} connections")
    server = one(up, "server")[0]
    check(
        server == str(config.server.bind[0]),
        f"upstream server {server} = server.bind {config.server.bind[0]}",
    )
    header = nginx_time(one(found, "client_header_timeout")[0])
    check(
        header == http.header_timeout,
        f"client_header_timeout {header:g} s = http.header_timeout {http.header_timeout:g} s",
    )
    body_t = nginx_time(one(found, "client_body_timeout")[0])
    check(
        body_t == http.body_timeout,
        f"client_body_timeout {body_t:g} s = http.body_timeout {http.body_timeout:g} s",
    )
    buffers = one(found, "large_client_header_buffers")
    check(
        nginx_size(buffers[1]) <= http.max_request_line,
        f"large_client_header_buffers {buffers[1]} <= http.max_request_line "
        f"{http.max_request_line}",
    )
    read = nginx_time(one(found, "proxy_read_timeout")[0])
    check(
        ws.ping_interval < read,
        f"websocket.ping_interval {ws.ping_interval:g} s < proxy_read_timeout {read:g} s",
    )
    check(one(found, "proxy_http_version") == ["1.1"], "proxy_http_version 1.1")
    headers = {v[0].lower(): " ".join(v[1:]) for v in found.get("proxy_set_header", [])}
    expected = {
        "upgrade": "$http_upgrade",
        "connection": "$connection_upgrade",
        "x-forwarded-for": "$proxy_add_x_forwarded_for",
        "x-forwarded-proto": "$scheme",
        "forwarded": '""',
    }
    for name, value in expected.items():
        check(headers.get(name) == value, f"proxy_set_header {name} {headers.get(name)}")
    forwarded_host = headers.get("x-forwarded-host")
    check(forwarded_host is not None, f"proxy_set_header x-forwarded-host {forwarded_host}")
    names = [entry.name for entry in config.middleware]
    check(names[:1] == ["proxy_headers"], f"middleware starts with proxy_headers: {names}")
    trusted = config.http.proxy_headers.trusted
    host = server.rsplit(":", 1)[0]
    check(
        host in trusted or server.startswith("unix:"),
        f"nginx reaches covetd over {host}, so its source address is loopback: "
        f"trusted {list(trusted)}",
    )


# -- kubernetes --------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"] = doc | {
                    "__file__": path.name
                }
    return found


def cmd_kubernetes() -> None:
    docs = manifests()
    kustomization = docs.pop("Kustomization/")
    for resource in kustomization["resources"]:
        check((DEPLOY / "kubernetes" / resource).exists(), f"kustomization resource {resource}")
    listed = set(kustomization["resources"])
    for key, doc in docs.items():
        if doc["__file__"] not in listed:
            print(f"  --   {doc['__file__']} ({key}) is not in kustomization.yaml (optional)")

    deployment = docs["Deployment/covetd"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    configmap = docs[f"ConfigMap/{pod['volumes'][0]['configMap']['name']}"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        file.write(configmap["data"]["config.yaml"])
        file.flush()
        config: Config = load_config(file.name, environ={"DATABASE_URL": "postgresql://x@h/db"})
    print(f"  ok   the ConfigMap's config.yaml validates (app {config.app})")

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    bind = config.server.bind[0]
    check(ports["http"] == bind.port, f"containerPort http {ports['http']} = server.bind {bind}")
    check(bind.host in ("0.0.0.0", "::"), f"server.bind {bind} listens beyond loopback")
    metrics_port = config.metrics.bind.port
    check(
        ports["metrics"] == metrics_port,
        f"containerPort metrics {ports['metrics']} = metrics.bind {config.metrics.bind}",
    )
    check(config.metrics.enabled, "metrics.enabled (the probes need the master's endpoint)")
    probes = {
        name: (container[name]["httpGet"]["path"], container[name]["httpGet"]["port"])
        for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        check(probes[probe] == (path, "metrics"), f"{probe} {probes[probe]}")

    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = config.server.graceful_timeout
    check(
        grace > pre_stop + graceful,
        f"terminationGracePeriodSeconds {grace} > preStop {pre_stop} + graceful_timeout "
        f"{graceful:g}",
    )
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    check(pod_sc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is True, "runAsNonRoot")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    seccomp = pod_sc.get("seccompProfile", {}).get("type")
    check(seccomp == "RuntimeDefault", f"seccomp {seccomp}")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    check(
        "emptyDir" in volumes.get(mounts.get("/tmp", ""), {}),
        "/tmp is an emptyDir (metrics directory, WebSocket broadcast sockets)",
    )
    check(mounts.get("/etc/covetd") == "config", "the ConfigMap is at /etc/covetd/config.yaml")
    check(
        container["command"][-2:] == ["-c", "/etc/covetd/config.yaml"],
        f"command {container['command']}",
    )
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    check(
        str(limits["cpu"]) == str(config.server.workers),
        f"cpu limit {limits['cpu']} = server.workers {config.server.workers}; requests {requests}",
    )
    env = {e["name"]: e for e in container["env"]}
    secret = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    check(secret["name"] == "covetd-db", f"DATABASE_URL from Secret {secret['name']}")

    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    check(selector.items() <= labels.items(), f"Deployment selector {selector} matches its pods")
    service = docs["Service/covetd"]
    check(service["spec"]["selector"].items() <= labels.items(), "Service selects the pods")
    targets = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    check(targets == {"http": "http", "metrics": "metrics"}, f"Service ports {targets}")
    pdb = docs["PodDisruptionBudget/covetd"]
    check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PDB selects the pods")
    hpa = docs["HorizontalPodAutoscaler/covetd"]
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    check(hpa["spec"]["scaleTargetRef"]["name"] == "covetd" and low >= 2, f"HPA {low}..{high}")
    pools = sum(p.max_size for p in config.database.values())
    print(
        f"  --   database connections at maxReplicas: {hpa['spec']['maxReplicas']} pods x "
        f"{config.server.workers} workers x {pools} = "
        f"{hpa['spec']['maxReplicas'] * int(config.server.workers) * pools}"
    )
    monitor = docs.get("ServiceMonitor/covetd")
    if monitor is not None:
        check(
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items(),
            "ServiceMonitor selects the Service",
        )
        check(
            monitor["spec"]["endpoints"][0]["port"] in targets,
            f"ServiceMonitor port {monitor['spec']['endpoints'][0]['port']}",
        )


# -- alerts have tests -------------------------------------------------------------------


def cmd_alerts_tested() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    for alert in alerts:
        check(alert in firing, f"{alert} has a unit test where it fires")
    print(f"alerts: {len(alerts)} alerts, {len(firing & set(alerts))} with a firing test")


# -- metric names and labels -------------------------------------------------------------

_KEYWORDS = {
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "stddev",
    "group",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "rate",
    "irate",
    "increase",
    "delta",
    "histogram_quantile",
    "time",
    "absent",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "sum_over_time",
    "label_values",
    "clamp_min",
    "clamp_max",
    "vector",
    "scalar",
    "abs",
    "inf",
    "nan",
}
_TARGET_LABELS = {"job", "instance"}
_GROUPING = "by|without|on|ignoring|group_left|group_right"


def exported(scrape: str) -> dict[str, set[str]]:
    """Sample names in a /metrics text, each with its label names."""
    from prometheus_client.parser import text_string_to_metric_families

    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def declared() -> dict[str, set[str]]:
    """Sample names of the METRICS table (for series a scrape has only with a database)."""
    names: dict[str, set[str]] = {}
    for spec in METRICS.values():
        labels = {"worker"} if spec.kind == "worker_gauge" else set(spec.labels)
        base = spec.name.removesuffix("_total")
        if spec.kind == "counter":
            names[base + "_total"] = labels
        elif spec.kind == "histogram":
            names[base + "_bucket"] = labels | {"le"}
            names[base + "_sum"] = names[base + "_count"] = labels
        elif spec.kind == "summary":
            names[base + "_sum"] = names[base + "_count"] = labels
        else:
            names[base] = labels
    return names


def references(expr: str) -> Iterator[tuple[str, set[str], set[str]]]:
    """(metric, label names in its matchers, labels grouped on anywhere in expr)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    grouped = {
        label.strip()
        for group in re.findall(rf"\b(?:{_GROUPING})\s*\(([^)]*)\)", expr)
        for label in group.split(",")
        if label.strip()
    }
    expr = re.sub(rf"\b(?:{_GROUPING})\s*\([^)]*\)", " ", expr)
    for match in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?", expr):
        name, matchers, call = match[1], match[2], match[3]
        if call or name in _KEYWORDS or name.startswith("$") or name == "le":
            continue
        if expr[max(0, match.start() - 1)] == "$":
            continue
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""))
        yield name, labels, grouped


def expressions() -> Iterator[tuple[str, str]]:
    path = DEPLOY / "grafana" / "covetd-dashboard.json"
    dashboard = json.loads(path.read_text())
    queries = sum(len(panel.get("targets", [])) for panel in dashboard["panels"])
    print(
        f"  ok   {path.relative_to(ROOT)} parses: {len(dashboard['panels'])} panels, "
        f"{queries} queries, uid {dashboard['uid']}"
    )
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"grafana: {panel['title']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"]
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            assert inner is not None, query
            # label_values(SELECTOR, LABEL): LABEL must be one of SELECTOR's labels
            yield f"grafana: ${variable['name']}", f"sum by ({inner[2]}) ({inner[1]})"
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alert: {rule.get('alert') or rule.get('record')}", rule["expr"]


def cmd_metrics(scrape_file: str) -> None:
    live = exported(Path(scrape_file).read_text())
    table = declared()
    print(f"metrics: {len(live)} sample names in the live scrape, {len(table)} in METRICS")
    used: dict[str, str] = {}
    for where, expr in expressions():
        refs = list(references(expr))
        if not refs:
            check(False, f"{where}: no metric found in {expr!r}")
        all_labels = set().union(*(live.get(n, table.get(n, set())) for n, _, _ in refs))
        grouped = refs[0][2] if refs else set()
        for name, labels, _ in refs:
            if name == "up":
                known: set[str] | None = set()
                source = "Prometheus"
            elif name in live:
                known, source = live[name], "live"
            elif name in table:
                known, source = table[name], "METRICS table only"
            else:
                known, source = None, ""
            if known is None:
                check(False, f"{where}: {name} is not exported")
                continue
            used.setdefault(name, source)
            unknown = labels - known - _TARGET_LABELS
            if unknown:
                check(False, f"{where}: {name} has no label(s) {sorted(unknown)}")
        stray = grouped - all_labels - _TARGET_LABELS - {"le"}
        if stray:
            check(False, f"{where}: grouping by {sorted(stray)}, which no metric of it has")
    for name, source in sorted(used.items()):
        print(f"  ok   {name} ({source})")
    print(
        f"metrics: {len(used)} metric names used by the dashboard and the alerts, "
        f"{sum(s == 'live' for s in used.values())} seen in the live scrape, "
        f"{sum(s == 'METRICS table only' for s in used.values())} from the METRICS table only"
    )


def main() -> int:
    command, *args = sys.argv[1:] or ["help"]
    commands: dict[str, Callable[..., None]] = {
        "yaml": cmd_yaml,
        "nginx": cmd_nginx,
        "kubernetes": cmd_kubernetes,
        "alerts-tested": cmd_alerts_tested,
        "metrics": cmd_metrics,
    }
    if command not in commands:
        print(__doc__)
        return 2
    commands[command](*args)
    if failures:
        print(f"{command}: {len(failures)} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
