"""The deployment kit (deploy/, Dockerfile, docker-compose.yml) is valid and consistent.

Prometheus files are checked by Debian's ``promtool`` (``scripts/ensure-tools`` installs
it); every ``databus ...`` command in a manifest is parsed by the real CLI; every
metric a dashboard or an alert queries is one the code exports. Run this file as a
script to regenerate ``deploy/k8s/prometheus-rules.yaml`` from the alert rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import Counter, Gauge, Histogram

from databus import metrics
from databus.catalog import CATALOG
from databus.cli import main
from databus.governance.views import configured_catalog
from databus.ops.broker_config import min_insync_replicas
from databus.sandbox import is_demo_cluster
from databus.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "databus.json"
TOPICS_YAML = K8S / "kafka-topics.yaml"
USERS_YAML = K8S / "kafka-users.yaml"
RULES_YAML = K8S / "prometheus-rules.yaml"


def _declared(kind: type) -> set[str]:
    """Names of the metrics of ``kind`` that src/databus/metrics.py declares."""
    declared = [value for value in vars(metrics).values() if isinstance(value, kind)]
    return {family.name for value in declared for family in value.describe()}


#: The metrics the publishers and workers export (src/databus/metrics.py), by type.
COUNTERS = {f"{name}_total" for name in _declared(Counter)}
HISTOGRAMS = _declared(Histogram)
GAUGES = _declared(Gauge)
EXPORTED = (
    COUNTERS
    | GAUGES
    | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
)
#: A Grafana variable has to become a duration before promtool can parse the query.
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


# --- helpers --------------------------------------------------------------------------


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run promtool; fail (never skip) when it is missing."""
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool is not installed: run scripts/ensure-tools (Debian package prometheus)"
        )
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def assert_promtool(*args: str, cwd: Path = REPO) -> None:
    result = promtool(*args, cwd=cwd)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                yield path, doc


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\boffset\s+\w+", " ", expr)
    keywords = {"and", "or", "unless", "bool", "by", "without", "offset", "inf", "nan"}
    names = re.findall(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {n for n in names if n.lower() not in keywords}


def unknown_metrics(expr: str) -> set[str]:
    """Names that are neither exported by databus nor Prometheus' ``up`` nor Faust's own."""
    return {
        m
        for m in metric_names(expr)
        if m not in EXPORTED and m != "up" and not m.startswith("faust_")
    }


class _Reached(Exception):
    """Raised instead of running a command, once the CLI has parsed it."""

    def __init__(self, path: tuple[str, ...], params: dict[str, Any]) -> None:
        super().__init__(path)
        self.path, self.params = path, params


def _leaves(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


def parse_databus(args: list[str], monkeypatch: pytest.MonkeyPatch) -> _Reached:
    """Parse ``databus ARGS`` with the real CLI (options, types, arguments) without running it."""

    def stand_in(path: tuple[str, ...]) -> Any:
        def reached(**params: Any) -> None:
            raise _Reached(path, params)

        return reached

    for path, command in _leaves(main):
        monkeypatch.setattr(command, "callback", stand_in(path))
    try:
        main.main(args=list(args), prog_name="databus", standalone_mode=False)
    except _Reached as reached:
        return reached
    except click.ClickException as error:
        pytest.fail(f"`databus {' '.join(args)}` does not parse: {error.format_message()}")
    pytest.fail(f"`databus {' '.join(args)}` names no command")


def test_command_parsing_checks_options_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    reached = parse_databus(["topics", "render", "--partitions", "6"], monkeypatch)
    assert reached.path == ("topics", "render")
    assert reached.params["partitions"] == 6
    for wrong in (["worker", "--web-port", "web"], ["worker", "--no-such-option"], ["nope"]):
        with pytest.raises(pytest.fail.Exception, match="does not parse"):
            parse_databus(wrong, monkeypatch)


def option_value(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


# --- Prometheus -----------------------------------------------------------------------


def test_prometheus_compose_config_is_valid() -> None:
    assert_promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))


def test_prometheus_k8s_config_is_valid(tmp_path: Path) -> None:
    """Debian builds promtool without Kubernetes discovery; then everything but the
    ``kubernetes_sd_configs`` blocks is checked by promtool and those blocks here."""
    path = PROMETHEUS / "prometheus.k8s.yml"
    result = promtool("check", "config", str(path))
    if result.returncode == 0:
        return
    assert "field kubernetes_sd_configs not found" in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
    config = load_yaml(path)
    roles = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}
    known = {"role", "namespaces", "selectors", "api_server", "kubeconfig_file", "attach_metadata"}
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert sd["role"] in roles, job["job_name"]
            assert set(sd) <= known, job["job_name"]
            assert all(isinstance(n, str) for n in sd.get("namespaces", {}).get("names", []))
            job["file_sd_configs"] = [{"files": ["targets/*.json"]}]
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert_promtool("check", "config", str(tmp_path / "prometheus.yml"))


def test_prometheus_k8s_variant_keeps_workers_and_publishers_by_pod_label() -> None:
    jobs = {
        job["job_name"]: job
        for job in load_yaml(PROMETHEUS / "prometheus.k8s.yml")["scrape_configs"]
    }
    for job, name in (
        ("databus-worker", "databus-worker"),
        ("databus-publisher", "databus-publisher"),
        ("databus-share", "databus-share"),
    ):
        keep = [r for r in jobs[job]["relabel_configs"] if r.get("action") == "keep"]
        assert {
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "regex": name,
            "action": "keep",
        } in keep
        assert jobs[job]["kubernetes_sd_configs"][0]["role"] == "pod"
    assert "prometheus" in jobs


def test_alert_rules_are_valid() -> None:
    assert_promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))


#: promtool rule unit tests; the daily ones are evaluated hourly to stay fast.
ALERT_TESTS = ("alerts.test.yml", "alerts.daily.test.yml")


def test_alert_rule_unit_tests_pass() -> None:
    assert_promtool("test", "rules", *ALERT_TESTS, cwd=PROMETHEUS)


def alerts() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_is_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    cases = [case for name in ALERT_TESTS for case in load_yaml(PROMETHEUS / name)["tests"]]
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent on healthy series"


def test_alerts_query_only_exported_metrics_and_link_a_runbook_section() -> None:
    operations = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, re.MULTILINE)
    }
    for rule in alerts():
        assert unknown_metrics(rule["expr"]) == set(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md", rule["alert"]
        assert anchor in anchors, rule["alert"]


def test_metric_name_extraction_finds_unknown_names() -> None:
    expr = (
        'sum by (le, dataset) (rate(databus_publish_latency_seconds_bucket{dataset="a"}[5m]))'
        " / on(dataset) group_left(x) typo_metric offset 1d and up == 0"
    )
    assert metric_names(expr) == {"databus_publish_latency_seconds_bucket", "typo_metric", "up"}
    assert unknown_metrics(expr) == {"typo_metric"}


def prometheus_rule_text() -> str:
    """deploy/k8s/prometheus-rules.yaml: the groups of alerts.yml for the Prometheus Operator."""

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "databus", "labels": {"app.kubernetes.io/name": "databus"}},
        "spec": {"groups": load_yaml(PROMETHEUS / "alerts.yml")["groups"]},
    }
    header = (
        "# The alert rules of deploy/prometheus/alerts.yml for the Prometheus Operator.\n"
        "# Generated: edit alerts.yml, then run  .venv/bin/python tests/unit/test_deploy_kit.py\n"
    )
    return header + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=1000)


def test_prometheus_rule_resource_matches_the_alert_rules() -> None:
    assert RULES_YAML.read_text(encoding="utf-8") == prometheus_rule_text(), (
        "stale: run .venv/bin/python tests/unit/test_deploy_kit.py"
    )
    assert load_yaml(RULES_YAML)["spec"]["groups"] == load_yaml(PROMETHEUS / "alerts.yml")["groups"]


# --- Grafana --------------------------------------------------------------------------


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "databus-overview"
    assert dashboard["schemaVersion"] >= 36
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_queries_only_exported_metrics_and_shows_them_all() -> None:
    used: set[str] = set()
    for title, expr in dashboard_queries():
        assert unknown_metrics(expr) == set(), title
        used |= metric_names(expr)
    shown = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
    assert (COUNTERS | GAUGES | HISTOGRAMS) - shown == set(), "metrics with no panel"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses the queries as recording rules (Grafana's $__ variables replaced)."""
    rules = []
    for number, (_, query) in enumerate(dashboard_queries()):
        expr = query
        for variable, duration in GRAFANA_DURATIONS.items():
            expr = expr.replace(variable, duration)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert_promtool("check", "rules", str(path))


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    variable = json.loads(DASHBOARD.read_text(encoding="utf-8"))["templating"]["list"][0]
    assert (source["type"], source["uid"]) == ("prometheus", variable["current"]["value"])
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "databus.yml")["providers"]
    mounts = dict(v.rsplit(":", 2)[:2] for v in compose()["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


# --- docker-compose.yml ---------------------------------------------------------------

#: Service keys of the Compose specification (a typo would be refused by `docker compose`).
COMPOSE_SERVICE_KEYS = set(
    "annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command "
    "configs container_name cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period "
    "cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy develop "
    "device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file "
    "environment expose extends external_links extra_hosts gpus group_add healthcheck "
    "hostname image init ipc isolation labels links logging mac_address mem_limit "
    "mem_reservation mem_swappiness memswap_limit network_mode networks oom_kill_disable "
    "oom_score_adj pid pids_limit platform ports post_start pre_stop privileged profiles "
    "pull_policy read_only restart runtime scale secrets security_opt shm_size stdin_open "
    "stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits user userns_mode "
    "uts volumes volumes_from working_dir".split()
)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(REPO / "docker-compose.yml")
    return loaded


def databus_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image", "").startswith("databus")
    }


def test_compose_services_use_known_keys_and_existing_images() -> None:
    spec = compose()
    assert set(spec) <= {"name", "services", "volumes", "networks", "configs", "secrets"} | {
        key for key in spec if key.startswith("x-")
    }
    for name, service in spec["services"].items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, name
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = REPO / service["build"]
            assert (context / "Dockerfile").is_file(), name
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), f"{name}: pin a tag"
            assert not service["image"].endswith(":latest"), name
        for dependency in service.get("depends_on", {}):
            assert dependency in spec["services"], f"{name} depends on unknown {dependency}"


def test_compose_mounts_exist() -> None:
    spec = compose()
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in spec["volumes"], f"{name} uses undeclared volume {source}"


def test_compose_databus_commands_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    services = databus_services()
    assert {"topics", "worker-1", "worker-2", "publisher"} <= set(services)
    for service in services.values():
        parse_databus(service["command"], monkeypatch)


def test_compose_settings_are_databus_settings() -> None:
    fields = {f"DATABUS_{name.upper()}" for name in Settings.model_fields} | {"DATABUS_CONFIG"}
    for name, service in databus_services().items():
        unknown = {k for k in service["environment"] if k.startswith("DATABUS_")} - fields
        assert unknown == set(), name


KAFKA_NODES = ("kafka", "kafka-2", "kafka-3")


def test_compose_kafka_serves_the_host_and_the_containers() -> None:
    spec = compose()
    internal = []
    for number, name in enumerate(KAFKA_NODES):
        kafka = spec["services"][name]
        host_port = 9092 + 2 * number  # as `databus broker start --nodes 3` lays them out
        assert kafka["ports"] == [f"127.0.0.1:{host_port}:{host_port}"], name
        environment = kafka["environment"]
        assert environment["BROKER_HOST_PORT"] == host_port, "the healthcheck's port"
        advertised = dict(
            listener.split("://")
            for listener in environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
        )
        assert advertised["PLAINTEXT"] == f"127.0.0.1:{host_port}"
        assert advertised["INTERNAL"] == f"{name}:29092"
        internal.append(advertised["INTERNAL"])
        protocols = dict(
            p.split(":") for p in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        )
        listeners = {entry.split("://")[0] for entry in environment["KAFKA_LISTENERS"].split(",")}
        assert set(advertised) <= listeners <= set(protocols)
        assert environment["KAFKA_NODE_ID"] == number + 1
    for name, service in databus_services().items():
        bootstrap = service["environment"]["DATABUS_BOOTSTRAP_SERVERS"]
        assert bootstrap == ",".join(internal), name


def test_compose_kafka_is_a_three_node_cluster_that_loses_nothing_with_one_down() -> None:
    """The same guarantees as `databus broker start --nodes 3` and the Strimzi topics."""
    spec = compose()
    environments = [spec["services"][name]["environment"] for name in KAFKA_NODES]
    voters = {e["KAFKA_CONTROLLER_QUORUM_VOTERS"] for e in environments}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert {e["CLUSTER_ID"] for e in environments} == {environments[0]["CLUSTER_ID"]}
    for environment in environments:
        assert environment["KAFKA_DEFAULT_REPLICATION_FACTOR"] == len(KAFKA_NODES)
        assert environment["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == len(KAFKA_NODES)
        assert environment["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == len(KAFKA_NODES)
        in_sync = min_insync_replicas(len(KAFKA_NODES))
        assert environment["KAFKA_MIN_INSYNC_REPLICAS"] == in_sync
        assert environment["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == in_sync
    for service in databus_services().values():
        assert service["environment"]["DATABUS_REPLICATION_FACTOR"] == str(len(KAFKA_NODES))
    assert {"kafka-data", "kafka-2-data", "kafka-3-data"} <= set(spec["volumes"])


def test_compose_kafka_is_a_demo_broker() -> None:
    """The stack runs with the public demo key, which works only against a demo broker."""
    cluster_id = compose()["services"]["kafka"]["environment"]["CLUSTER_ID"]

    assert is_demo_cluster(cluster_id)
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a KRaft cluster id


def test_compose_publisher_simulates_days_that_have_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publisher refuses records dated after the broker received them (outside a demo
    broker's simulated days): the simulated period must end before today."""
    parsed = parse_databus(databus_services()["publisher"]["command"], monkeypatch)
    start = parsed.params["start"].date()
    last_day = start + dt.timedelta(days=parsed.params["days"] - 1)

    assert last_day < dt.date.today()  # noqa: DTZ011 - the host's date is what matters
    assert start == dt.date(2025, 1, 1)


def test_compose_metrics_ports_listen_beyond_the_container_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prometheus scrapes from its own container: a port on 127.0.0.1 would be unreachable."""
    opened = 0
    for name, service in databus_services().items():
        params = parse_databus(service["command"], monkeypatch).params
        for port, host in (("web_port", "web_host"), ("metrics_port", "metrics_host")):
            if params.get(port) is not None:
                opened += 1
                assert params[host] == "0.0.0.0", f"{name}: --{host.replace('_', '-')}"
    assert opened == 3  # two workers and the publisher


def test_compose_worker_healthchecks_ask_livez_on_the_web_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, service in databus_services().items():
        if not name.startswith("worker-"):
            continue
        port = parse_databus(service["command"], monkeypatch).params["web_port"]
        (probe,) = [arg for arg in service["healthcheck"]["test"] if "urlopen" in arg]
        assert f"'http://127.0.0.1:{port}/livez'" in probe, name


def test_prometheus_scrapes_the_ports_the_compose_commands_open() -> None:
    services = databus_services()
    opened = {
        f"{name}:{option_value(service['command'], flag)}"
        for name, service in services.items()
        for flag in ("--web-port", "--metrics-port")
        if flag in service["command"]
    }
    jobs = {
        job["job_name"]: {t for c in job.get("static_configs", []) for t in c["targets"]}
        for job in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
    }
    assert jobs["databus-worker"] | jobs["databus-publisher"] == opened
    assert all(t.startswith("worker-") for t in jobs["databus-worker"])
    mounts = [v for v in compose()["services"]["prometheus"]["volumes"] if v.startswith(".")]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts


# --- Dockerfile -----------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` out of the build context (last match wins;
    a pattern that matches a parent directory matches what is inside it)."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def test_dockerfile_builds_a_non_root_databus_image() -> None:
    instructions = dockerfile()
    bases = [args for keyword, args in instructions if keyword == "FROM"]
    assert all(base.split()[0] == "python:3.11-slim" for base in bases)
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert '"/src[rocksdb]"' in runs
    user = [args for keyword, args in instructions if keyword == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}
    entrypoint = json.loads([args for keyword, args in instructions if keyword == "ENTRYPOINT"][-1])
    command = json.loads([args for keyword, args in instructions if keyword == "CMD"][-1])
    assert entrypoint == ["databus"]
    assert command == ["--help"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0
    assert "Commands:" in result.output


def test_docker_build_context_holds_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    context = {path for path in tracked if not dockerignored(path, patterns)}
    copied = [
        source
        for keyword, args in dockerfile()
        if keyword == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    built = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = [*copied, "pyproject.toml", pyproject["project"]["readme"], *built["force-include"]]
    for source in needed:
        assert any(p == source or p.startswith(f"{source}/") for p in context), source
        assert source in copied or any(source.startswith(f"{c}/") for c in copied), source
    assert "src/databus/__init__.py" in context
    assert not any(p.startswith(("tests/", ".git", ".venv")) for p in context)
    assert dockerignored(".venv/bin/python", patterns)
    assert dockerignored("src/databus/__pycache__/x.pyc", patterns)


# --- Kubernetes -----------------------------------------------------------------------


def test_k8s_manifests_parse_and_are_listed() -> None:
    documents = list(k8s_documents())
    assert documents
    for path, doc in documents:
        assert doc.get("apiVersion"), path.name
        assert doc.get("kind"), path.name
        if doc["kind"] != "Kustomization":
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", doc["metadata"]["name"])
    (kustomization,) = k8s_kind("Kustomization")
    listed = set(kustomization["resources"])
    # Strimzi's resources go to the Kafka cluster's namespace, not this kustomization's.
    strimzi = {TOPICS_YAML.name, USERS_YAML.name}
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} - strimzi
    assert listed == files


def k8s_workers() -> list[dict[str, Any]]:
    return [
        container
        for deployment in k8s_kind("Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        if container["image"].startswith("databus")
    ]


def test_k8s_databus_commands_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    containers = k8s_workers()
    assert containers
    for container in containers:
        assert parse_databus(container["args"], monkeypatch).path == ("worker",)


def test_k8s_worker_wiring() -> None:
    (deployment,) = k8s_kind("Deployment")
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "databus-worker"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = k8s_workers()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["web"] == int(option_value(container["args"], "--web-port"))
    for probe, path in (
        ("startupProbe", "/readyz"),
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"]["port"] in ports, probe
        assert container[probe]["httpGet"]["path"] == path, probe
    assert option_value(container["args"], "--web-host") == "0.0.0.0"  # the pod's network
    (policy,) = k8s_kind("NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["web"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"] for v in template["spec"]["volumes"]}
    assert set(mounts) <= volumes
    assert option_value(container["args"], "--data-dir").startswith(mounts["data"] + "/")
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    (settings,) = k8s_kind("ConfigMap")
    refs = [ref for source in container["envFrom"] for ref in source.values()]
    assert {"name": settings["metadata"]["name"]} in refs
    fields = {f"DATABUS_{name.upper()}" for name in Settings.model_fields}
    assert set(settings["data"]) <= fields
    assert deployment["spec"]["replicas"] <= int(settings["data"]["DATABUS_PARTITIONS"])
    (service,) = k8s_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert {p["name"] for p in service["spec"]["ports"]} <= set(ports)
    (monitor,) = k8s_kind("ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in set(ports)


def rendered_topics_command() -> list[str]:
    """The command that kafka-topics.yaml says it was generated with."""
    header = TOPICS_YAML.read_text(encoding="utf-8").splitlines()[:5]
    (line,) = [h for h in header if h.startswith("#   databus ")]
    return line.removeprefix("#   databus ").split()


def test_kafka_topics_yaml_is_the_fresh_render() -> None:
    args = rendered_topics_command()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert TOPICS_YAML.read_text(encoding="utf-8") == result.output, (
        f"stale: databus {' '.join(args)} > {TOPICS_YAML.relative_to(REPO)}"
    )


def test_kafka_topics_yaml_has_every_catalog_topic() -> None:
    args = rendered_topics_command()
    partitions = int(option_value(args, "--partitions"))
    replicas = int(option_value(args, "--replication-factor"))
    topics = {doc["spec"]["topicName"]: doc for doc in k8s_kind("KafkaTopic")}
    with_shares = configured_catalog(Settings())
    assert {dataset.topic for dataset in CATALOG} < set(topics)
    assert set(topics) == {dataset.topic for dataset in with_shares}, "catalog + grants"
    for dataset in with_shares:
        resource = topics[dataset.topic]
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == option_value(
            args, "--cluster"
        )
        assert resource["spec"]["partitions"] == dataset.partitions(partitions)
        assert resource["spec"]["replicas"] == replicas
        # Three replicas: a write needs two of them, so one broker may fail.
        assert resource["spec"]["config"] == dataset.topic_config() | {"min.insync.replicas": "2"}
    (settings,) = k8s_kind("ConfigMap")
    assert int(settings["data"]["DATABUS_PARTITIONS"]) == partitions, "co-partitioning"
    assert int(settings["data"]["DATABUS_REPLICATION_FACTOR"]) == replicas


def test_kafka_users_yaml_is_the_fresh_render() -> None:
    header = USERS_YAML.read_text(encoding="utf-8").splitlines()[:5]
    (line,) = [h for h in header if h.startswith("#   databus ")]
    args = line.removeprefix("#   databus ").split()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert USERS_YAML.read_text(encoding="utf-8") == result.output, (
        f"stale: databus {' '.join(args)} > {USERS_YAML.relative_to(REPO)}"
    )
    users = {doc["metadata"]["name"] for doc in k8s_kind("KafkaUser")}
    assert {"databus-decisions", "databus-share", "auditor"} <= users
    assert {dataset.owner for dataset in CATALOG.sources()} <= users


if __name__ == "__main__":
    RULES_YAML.write_text(prometheus_rule_text(), encoding="utf-8")
    sys.exit(0)
