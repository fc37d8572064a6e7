"""config/components/flux-events-ingress: the NetworkPolicy a Flux user adds for the ``flux``
provider, applied with ``kubectl apply -k`` to the strict embedded cluster.

Flux's default ``allow-egress`` policy admits into flux-system only pods of
flux-system; the component must admit fluxwatch's own pods (the Deployment's
pod labels, in fluxwatch's namespace) to notification-controller's event port,
9090 (container port ``http``, behind Service port 80), and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from conftest import Cluster
from fluxwatch.notify.providers.flux import DEFAULT_EVENTS_ADDRESS

ROOT = Path(__file__).resolve().parents[2]
NOTIFICATION_CONTROLLER_EVENTS_PORT = 9090


def write_overlay(overlay: Path) -> Path:
    """config/default with the component; kustomize takes relative paths only."""
    overlay.mkdir()
    config = os.path.relpath(ROOT / "config", overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {config}/default\n"
        f"components:\n  - {config}/components/flux-events-ingress\n"
    )
    return overlay


async def test_the_component_admits_fluxwatch_to_the_event_port_only(cluster: Cluster) -> None:
    overlay = write_overlay(cluster.workdir / "overlay")
    (await cluster.kubectl("create", "namespace", "flux-system")).check()
    applied = (await cluster.kubectl("apply", "-k", str(overlay))).check()
    assert "networkpolicy.networking.k8s.io/allow-fluxwatch-events created" in applied.stdout

    got = (
        await cluster.kubectl(
            "get", "networkpolicy", "allow-fluxwatch-events", "-n", "flux-system", "-o", "yaml"
        )
    ).check()
    spec = yaml.safe_load(got.stdout)["spec"]
    deployment = yaml.safe_load(
        (
            await cluster.kubectl(
                "get", "deployment", "fluxwatch", "-n", "fluxwatch-system", "-o", "yaml"
            )
        )
        .check()
        .stdout
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert spec["podSelector"] == {"matchLabels": {"app": "notification-controller"}}
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    (peer,) = rule["from"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": deployment["metadata"]["namespace"]
    }
    selector = peer["podSelector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": NOTIFICATION_CONTROLLER_EVENTS_PORT}]
    # The provider's default address is that Service, in the namespace the policy guards.
    assert "notification-controller.flux-system.svc" in DEFAULT_EVENTS_ADDRESS
