"""The Flux controllers' Deployments as ``flux install`` (Flux v2.9) writes them.

``fluxwatch doctor`` audits these objects (FLUX-FACTS §1, §5): the
leader-election flags, the memory limits and the image versions of
helm-, kustomize- and source-controller. For its verdicts against the
embedded cluster to mean what they mean on a real one, the scenarios create
what a default install creates in ``flux-system``: the Namespace with its
labels, one ServiceAccount and one Deployment per controller, each
Deployment with the container ``manager``, the image
``ghcr.io/fluxcd/<controller>:<tag>`` of that Flux release, the args
``flux install`` patches in (``--events-addr`` first, then
``--watch-all-namespaces=true``, ``--log-level=info``,
``--log-encoding=json``, ``--enable-leader-election``), ports ``http-prom``
8080 and ``healthz`` 9440 (source- and notification-controller also serve
``http`` 9090, notification-controller ``http-webhook`` 9292), probes, the
1Gi memory limit Flux ships, and the labels ``app``,
``app.kubernetes.io/component``/``instance``/``part-of``/``version`` and
``control-plane: controller``. Their status says one replica is available.

:data:`SEED_MITIGATED` is the seed's fix applied to that install (FLUX-FACTS
§1): leader election stretched to 60s/40s/5s and memory limits of 512Mi
(helm-controller) and 384Mi (kustomize-, source-controller). An install may
also run other controller releases (``versions``), as a cluster that has not
upgraded Flux does; ``doctor`` reports the upstream changes against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxwatch.sim.helmcontroller import LeaseTimings
from fluxwatch.sim.store import ApiError, Store

FLUX_VERSION = "v2.9.4"
# The controller releases Flux v2.9.4's manifests pin (fluxcd/flux2 manifests/bases).
CONTROLLER_VERSIONS: Mapping[str, str] = {
    "source-controller": "v1.9.4",
    "kustomize-controller": "v1.9.4",
    "helm-controller": "v1.6.3",
    "notification-controller": "v1.9.3",
}
DEPLOYMENTS = "deployments.apps"
SERVICEACCOUNTS = "serviceaccounts"
NAMESPACES = "namespaces"
FLUX_MEMORY_LIMIT = "1Gi"
EVENTS_ADDR = "http://notification-controller.flux-system.svc.cluster.local./"

_TERMINATION_GRACE = {
    "helm-controller": 600,
    "kustomize-controller": 60,
    "source-controller": 10,
    "notification-controller": 10,
}
_CPU_REQUEST = {"source-controller": "50m"}


@dataclass(frozen=True, slots=True)
class FluxInstall:
    """What differs between installs: leader-election flags (None: not set, so the
    controllers use their defaults 35s/30s/5s), memory limits per controller, and image
    references per controller instead of Flux v2.9.4's (a tag such as ``v1.4.1``, or a
    whole reference such as ``ghcr.io/fluxcd/helm-controller@sha256:...``)."""

    leader_election: LeaseTimings | None = None
    memory_limits: Mapping[str, str] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    namespace: str = "flux-system"

    def timings(self) -> LeaseTimings:
        """The timings the controllers run with, so the simulated Leases agree."""
        return self.leader_election or LeaseTimings()


DEFAULT = FluxInstall()
SEED_MITIGATED = FluxInstall(
    leader_election=LeaseTimings(60.0, 40.0, 5.0),
    memory_limits={
        "helm-controller": "512Mi",
        "kustomize-controller": "384Mi",
        "source-controller": "384Mi",
    },
)


def _labels(controller: str, install: FluxInstall) -> dict[str, str]:
    return {
        "app.kubernetes.io/component": controller,
        "app.kubernetes.io/instance": install.namespace,
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/version": FLUX_VERSION,
    }


def _args(controller: str, install: FluxInstall) -> list[str]:
    args = [] if controller == "notification-controller" else [f"--events-addr={EVENTS_ADDR}"]
    args += [
        "--watch-all-namespaces=true",
        "--log-level=info",
        "--log-encoding=json",
        "--enable-leader-election",
    ]
    if controller == "source-controller":
        args += [
            "--storage-path=/data",
            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
        ]
    timings = install.leader_election
    if timings is not None:
        # Written as the seed writes them: 60s, not Go's 1m0s.
        args += [
            f"--leader-election-lease-duration={timings.lease_duration:g}s",
            f"--leader-election-renew-deadline={timings.renew_deadline:g}s",
            f"--leader-election-retry-period={timings.retry_period:g}s",
        ]
    return args


def _ports(controller: str) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    if controller in ("source-controller", "notification-controller"):
        ports.append({"containerPort": 9090, "name": "http", "protocol": "TCP"})
    if controller == "notification-controller":
        ports.append({"containerPort": 9292, "name": "http-webhook", "protocol": "TCP"})
    ports.append({"containerPort": 8080, "name": "http-prom", "protocol": "TCP"})
    ports.append({"containerPort": 9440, "name": "healthz", "protocol": "TCP"})
    return ports


def image(controller: str, install: FluxInstall = DEFAULT) -> str:
    version = install.versions.get(controller, CONTROLLER_VERSIONS[controller])
    # A whole reference (a digest, another registry) is taken as written.
    return version if "/" in version else f"ghcr.io/fluxcd/{controller}:{version}"


def deployment(controller: str, install: FluxInstall = DEFAULT) -> dict[str, Any]:
    """One controller's Deployment, as the API server would store it after ``flux install``."""
    labels = _labels(controller, install)
    pod_labels = {"app": controller, **labels}
    readiness_port, readiness_path = (
        ("http", "/") if controller == "source-controller" else ("healthz", "/readyz")
    )
    container: dict[str, Any] = {
        "name": "manager",
        "image": image(controller, install),
        "imagePullPolicy": "IfNotPresent",
        "args": _args(controller, install),
        "env": [
            {
                "name": "RUNTIME_NAMESPACE",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
            },
            {
                "name": "GOMEMLIMIT",
                "valueFrom": {
                    "resourceFieldRef": {
                        "containerName": "manager",
                        "divisor": "0",
                        "resource": "limits.memory",
                    }
                },
            },
        ],
        "ports": _ports(controller),
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz", "scheme": "HTTP"}},
        "readinessProbe": {
            "httpGet": {"path": readiness_path, "port": readiness_port, "scheme": "HTTP"}
        },
        "resources": {
            "limits": {
                "cpu": "1",
                "memory": install.memory_limits.get(controller, FLUX_MEMORY_LIMIT),
            },
            "requests": {"cpu": _CPU_REQUEST.get(controller, "100m"), "memory": "64Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"mountPath": "/tmp", "name": "temp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": controller,
            "namespace": install.namespace,
            "labels": {**labels, "control-plane": "controller"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": controller}},
            "template": {
                "metadata": {
                    "annotations": {
                        "prometheus.io/port": "8080",
                        "prometheus.io/scrape": "true",
                    },
                    "labels": pod_labels,
                },
                "spec": {
                    "containers": [container],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-cluster-critical",
                    "securityContext": {"fsGroup": 1337},
                    "serviceAccountName": controller,
                    "terminationGracePeriodSeconds": _TERMINATION_GRACE[controller],
                    "volumes": [{"emptyDir": {}, "name": "temp"}],
                },
            },
        },
        "status": {
            "availableReplicas": 1,
            "observedGeneration": 1,
            "readyReplicas": 1,
            "replicas": 1,
            "updatedReplicas": 1,
        },
    }


def install_flux(
    store: Store, controllers: tuple[str, ...], install: FluxInstall = DEFAULT
) -> None:
    """The Flux namespace, and a ServiceAccount and a Deployment per controller."""
    labels = {
        "app.kubernetes.io/instance": install.namespace,
        "app.kubernetes.io/part-of": "flux",
        "app.kubernetes.io/version": FLUX_VERSION,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
    }
    _create(
        store,
        NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": install.namespace}},
    )
    store.patch(NAMESPACES, None, install.namespace, {"metadata": {"labels": labels}})
    for controller in controllers:
        _create(
            store,
            SERVICEACCOUNTS,
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": controller,
                    "namespace": install.namespace,
                    "labels": _labels(controller, install),
                },
            },
        )
        _create(store, DEPLOYMENTS, deployment(controller, install))


def _create(store: Store, res: str, obj: dict[str, Any]) -> None:
    # A scenario may run on a store that already has them (a second scenario): keep those.
    try:
        store.create(res, obj)
    except ApiError as exc:
        if exc.code != 409:
            raise
