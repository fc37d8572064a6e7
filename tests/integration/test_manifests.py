"""The shipped manifests, rendered as kustomize renders them and applied as Flux would.

- every combination of ``config/default`` and the optional components renders
  (``kubectl kustomize``), and in each the listen addresses the container's args
  give (read by fluxwatch's own parser, over the shipped settings) are the ports
  the probes, the Service and the NetworkPolicy name: one source of truth;
- every combination is accepted by the embedded cluster (strict built-in kind
  validation, ``kubectl apply -k``);
- ``config/flux/fluxwatch.yaml`` (a GitRepository and a Flux Kustomization) is
  accepted against Flux's published CRDs, and what kustomize-controller would build
  from it (``config/default`` plus its components and patches) holds together too.
"""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.cli import _settings, build_parser
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.telemetry.listen import parse_listen_addr
from tests.conftest import kustomize, one_of

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
# monitoring's PodMonitor and PrometheusRule are prometheus-operator kinds, whose CRDs
# this cluster does not have; that component's own test renders and checks it. approver
# is RBAC for people, touching nothing of the Deployment's: tests/integration/
# test_approve_cli.py renders it with config/default and runs the command on its rules
# (here it would double the combinations).
OWN_TESTS = {"monitoring", "approver"}
COMPONENTS = sorted(
    p.name for p in (CONFIG / "components").iterdir() if p.is_dir() and p.name not in OWN_TESTS
)
COMBINATIONS = [
    combo for n in range(len(COMPONENTS) + 1) for combo in itertools.combinations(COMPONENTS, n)
]
FLUX_EXAMPLE = CONFIG / "flux" / "fluxwatch.yaml"
# shared/flux-crds sits beside the checkout (CI) or at /work/shared (a developer's machine).
FLUX_CRDS = next(
    (
        p
        for p in (ROOT.parent / "shared" / "flux-crds", Path("/work/shared/flux-crds"))
        if p.is_dir()
    ),
    ROOT.parent / "shared" / "flux-crds",
)
# Flux's Kustomization kind, as this project's tests define it (shared/flux-crds has none).
KUSTOMIZATION_CRD = ROOT / "tests" / "fixtures" / "crds" / "kustomizations.yaml"


def _kubectl() -> Path:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed: it renders and applies config/")
    return binary


def _overlay(where: Path, components: tuple[str, ...], extra: dict[str, Any] | None = None) -> Path:
    """A kustomization of config/default with ``components``: what a user writes."""
    where.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes relative paths only.
        "resources": [os.path.relpath(CONFIG / "default", where)],
        "components": [os.path.relpath(CONFIG / "components" / c, where) for c in components],
        **(extra or {}),
    }
    (where / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    return where


def _effective_settings(docs: list[dict[str, Any]], tmp: Path) -> tuple[Settings, dict[str, Any]]:
    """The settings the container would run with: its args, read by fluxwatch's own
    parser, over the ConfigMap's config.yaml in place of the mounted file."""
    deploy = one_of(docs, "Deployment", "fluxwatch")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run"
    assert args.config == "/etc/fluxwatch/config.yaml"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    config_map = one_of(docs, "ConfigMap", "fluxwatch-config")
    assert volumes[mounts["/etc/fluxwatch"]]["configMap"]["name"] == config_map["metadata"]["name"]
    config = tmp / "config.yaml"
    config.write_text(config_map["data"]["config.yaml"])
    args.config = str(config)
    return _settings(args), container


def _port(container: dict[str, Any], ref: int | str) -> int:
    """A probe's or Service's port (a number, or the name of a container port)."""
    if isinstance(ref, int):
        return ref
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ref in named, f"port {ref!r} is not one of the container's {sorted(named)}"
    return named[ref]


def check_addresses(docs: list[dict[str, Any]], tmp: Path) -> None:
    """The args' addresses are the ports everything else names."""
    settings, container = _effective_settings(docs, tmp)
    metrics = parse_listen_addr(settings.telemetry.metrics_addr)
    health = parse_listen_addr(settings.telemetry.health_addr)
    # The kubelet probes and Prometheus scrapes the pod's IP, of either family.
    assert metrics.wildcard and health.wildcard, (metrics, health)
    assert _port(container, "http-prom") == metrics.port
    assert _port(container, "healthz") == health.port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert _port(container, get["port"]) == health.port, probe
    service = one_of(docs, "Service", "fluxwatch-metrics")
    (service_port,) = service["spec"]["ports"]
    assert _port(container, service_port["targetPort"]) == metrics.port
    assert service_port["name"] == "http-prom"
    # fluxwatch's own policies (flux-events-ingress admits fluxwatch to Flux's pods).
    own = (
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"].get("namespace") != "flux-system"
    )
    for policy in own:
        ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]]
        assert [_port(container, p) for p in ports] == [metrics.port]


def test_the_addresses_live_in_the_args_only() -> None:
    """The ConfigMap leaves them to the Deployment, so the two cannot disagree."""
    shipped = yaml.safe_load((CONFIG / "manager" / "config.yaml").read_text())
    assert "metricsAddr" not in shipped["telemetry"]
    assert "healthAddr" not in shipped["telemetry"]


def test_the_priority_class_is_fluxs_and_its_quota_admits_it() -> None:
    deploy = yaml.safe_load((CONFIG / "manager" / "deployment.yaml").read_text())
    priority = deploy["spec"]["template"]["spec"]["priorityClassName"]
    assert priority == "system-cluster-critical"
    quota = yaml.safe_load((CONFIG / "manager" / "resourcequota.yaml").read_text())
    assert quota["metadata"]["namespace"] == deploy["metadata"]["namespace"]
    (expr,) = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert (expr["scopeName"], expr["operator"]) == ("PriorityClass", "In")
    assert priority in expr["values"]
    assert int(quota["spec"]["hard"]["pods"]) >= deploy["spec"]["replicas"] * 2  # a surge


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])


@pytest.fixture(scope="module")
def union(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Any]:
    """config/default with every component: what the cluster test applies."""
    where = tmp_path_factory.mktemp("union")
    return {_key(d): d for d in kustomize(_kubectl(), _overlay(where, tuple(COMPONENTS)))}


@pytest.fixture(scope="module")
def base() -> set[tuple[str, str, str]]:
    return {_key(d) for d in kustomize(_kubectl(), CONFIG / "default")}


@pytest.mark.parametrize("components", COMBINATIONS, ids=lambda c: "+".join(c) or "default")
def test_every_combination_renders_with_matching_addresses(
    components: tuple[str, ...],
    union: dict[tuple[str, str, str], Any],
    base: set[tuple[str, str, str]],
    tmp_path: Path,
) -> None:
    docs = kustomize(_kubectl(), _overlay(tmp_path / "overlay", components))
    check_addresses(docs, tmp_path)
    # Components only add objects: every object of this combination is the same object
    # in the union, so the cluster accepting the union accepts every combination.
    for doc in docs:
        assert doc == union[_key(doc)], _key(doc)
    assert base <= {_key(d) for d in docs}


def test_a_port_that_disagrees_with_its_flag_is_caught(tmp_path: Path) -> None:
    """The check above is not vacuous: move the metrics flag and it fails."""
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/args/2",
              "value": "--metrics-addr=:8081"}]  # fmt: skip
    overlay = _overlay(
        tmp_path / "overlay",
        (),
        {"patches": [{"target": {"kind": "Deployment"}, "patch": yaml.safe_dump(patch)}]},
    )
    with pytest.raises(AssertionError):
        check_addresses(kustomize(_kubectl(), overlay), tmp_path)


async def test_every_combination_is_accepted_by_the_cluster(
    union: dict[tuple[str, str, str], Any], tmp_path: Path
) -> None:
    binary = _kubectl()
    async with ApiServer(tls=True) as api:
        kubectl = Kubectl(binary, api.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "c")
        (await kubectl("create", "namespace", "flux-system")).check()
        # The union of every component (each combination is a part of it, above); then
        # config/default alone again, as an upgrade that drops the components would.
        outputs = []
        for components in (tuple(COMPONENTS), ()):
            overlay = _overlay(tmp_path / ("+".join(components) or "default"), components)
            applied = (await kubectl("apply", "-k", str(overlay), timeout=60)).check()
            outputs.append(applied.stdout)
        first = outputs[0]
        stored, _ = api.store.list("deployments.apps", "fluxwatch-system")
        (deploy,) = stored
        assert deploy["spec"]["template"]["spec"]["priorityClassName"] == (
            "system-cluster-critical"
        )
        policies, _ = api.store.list("networkpolicies.networking.k8s.io", "fluxwatch-system")
        assert [p["metadata"]["name"] for p in policies] == ["fluxwatch"]
        # Every object of the union was created, none refused or left out.
        created = [line for line in first.splitlines() if line.endswith(" created")]
        assert len(created) == len(union), first


def _flux_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FLUX_EXAMPLE.read_text()) if d]


async def test_the_flux_example_is_accepted_by_fluxs_crds(tmp_path: Path) -> None:
    binary = _kubectl()
    crds = [
        FLUX_CRDS / "source.toolkit.fluxcd.io_gitrepositories.yaml",
        KUSTOMIZATION_CRD,
    ]
    missing = [str(p) for p in crds if not p.exists()]
    if missing:
        pytest.skip(f"Flux's CRDs are not here: {missing}")
    async with ApiServer(tls=True) as api:
        kubectl = Kubectl(binary, api.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "c")
        for crd in crds:
            (await kubectl("apply", "-f", str(crd))).check()
        (await kubectl("create", "namespace", "flux-system")).check()
        applied = (await kubectl("apply", "-f", str(FLUX_EXAMPLE))).check()
        assert applied.stdout.split("\n")[:2] == [
            "gitrepository.source.toolkit.fluxcd.io/fluxwatch created",
            "kustomization.kustomize.toolkit.fluxcd.io/fluxwatch created",
        ]
        stored = api.store.get(
            "kustomizations.kustomize.toolkit.fluxcd.io", "flux-system", "fluxwatch"
        )
        assert stored["spec"]["components"] == [
            "../components/helm-storage",
            "../components/networkpolicy",
        ]
        # Validation is on: the same Kustomization with a source kind Flux does not have
        # is refused with the CRD's enum.
        broken = _flux_docs()[1]
        broken["metadata"]["name"] = "broken"
        broken["spec"]["sourceRef"]["kind"] = "GitRepo"
        refused = await kubectl("apply", "-f", "-", stdin=yaml.safe_dump(broken))
        assert refused.returncode == 1
        assert 'spec.sourceRef.kind: Unsupported value: "GitRepo"' in refused.stderr


def test_what_flux_builds_from_the_example_holds_together(tmp_path: Path) -> None:
    """kustomize-controller adds the Kustomization's components and patches to the
    kustomization.yaml at ``spec.path`` and builds it; the same here, on a copy."""
    source, kustomization = _flux_docs()
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "fluxwatch"}
    assert source["spec"]["ignore"].split() == ["/*", "!/config/"]
    checkout = tmp_path / "checkout"
    shutil.copytree(CONFIG, checkout / "config")
    path = checkout / kustomization["spec"]["path"]
    generated = yaml.safe_load((path / "kustomization.yaml").read_text())
    generated["components"] = kustomization["spec"]["components"]
    generated["patches"] = kustomization["spec"]["patches"]
    (path / "kustomization.yaml").write_text(yaml.safe_dump(generated))
    docs = kustomize(_kubectl(), path)
    check_addresses(docs, tmp_path)
    settings, container = _effective_settings(docs, tmp_path)
    assert settings.watch.exclude_namespaces == ["kube-system"]
    assert [p.name for p in settings.notify.providers] == ["slack"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("NetworkPolicy", "fluxwatch") in kinds
    assert ("ClusterRole", "fluxwatch-helm-storage") in kinds
