"""``doctor`` on the flux provider's way into flux-system: Flux's default NetworkPolicies
refuse fluxwatch's pods, the shipped component admits them.

The policies are created in the embedded cluster (validated as a real server
does) and read back by doctor through the real client.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_notify_receiver import Receiver

from fluxwatch.doctor import INGRESS_COMPONENT, Level, check_flux_ingress, run_doctor
from fluxwatch.kube.client import KubeClient
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer

ROOT = Path(__file__).resolve().parents[2]
NETPOL = "networkpolicies.networking.k8s.io"


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


# What `flux install` puts in flux-system (fluxcd/flux2 manifests/policies).
FLUX_DEFAULTS = [
    policy(
        "allow-egress",
        {
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
            "egress": [{}],
            "podSelector": {},
        },
    ),
    policy(
        "allow-scraping",
        {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080}]}],
            "podSelector": {},
        },
    ),
    policy(
        "allow-webhooks",
        {
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 9292}]}],
            "podSelector": {"matchLabels": {"app": "notification-controller"}},
        },
    ),
]
COMPONENT = yaml.safe_load(
    (ROOT / "config/components/flux-events-ingress/networkpolicy.yaml").read_text()
)


def settings(flux: bool = True) -> Settings:
    providers = [{"name": "nc", "type": "flux", "address": "http://127.0.0.1:9/"}] if flux else []
    return Settings.model_validate(
        {"leader": {"namespace": "fluxwatch-system"}, "notify": {"providers": providers}}
    )


async def ingress(api: ApiServer, client: KubeClient, s: Settings) -> list[tuple[Level, str]]:
    async with Receiver() as nc:
        findings = await run_doctor(s, client, events_addr=nc.url)
    return [(f.level, f.message) for f in findings if f.check == "flux-ingress"]


async def test_flux_defaults_fail_and_the_component_passes(
    apiserver: ApiServer, client: KubeClient
) -> None:
    assert await ingress(apiserver, client, settings()) == [
        (Level.PASS, "no NetworkPolicy in flux-system restricts ingress to notification-controller")
    ]
    for doc in FLUX_DEFAULTS:
        apiserver.store.create(NETPOL, copy.deepcopy(doc))
    [(level, message)] = await ingress(apiserver, client, settings())
    assert level is Level.FAIL
    assert "allow-egress, allow-scraping, allow-webhooks" in message
    assert INGRESS_COMPONENT in message
    # Without a flux provider nobody needs the way in: no finding at all.
    assert await ingress(apiserver, client, settings(flux=False)) == []

    apiserver.store.create(NETPOL, copy.deepcopy(COMPONENT))
    [(level, message)] = await ingress(apiserver, client, settings())
    assert level is Level.PASS
    assert "flux-system/allow-fluxwatch-events admits fluxwatch's pods" in message


@pytest.mark.parametrize(
    ("change", "admitted"),
    [
        (lambda r: r, True),
        (lambda r: {**r, "ports": [{"protocol": "TCP", "port": 9292}]}, False),
        (lambda r: {**r, "ports": [{"protocol": "TCP", "port": "http"}]}, True),
        (lambda r: {k: v for k, v in r.items() if k != "ports"}, True),
        (
            lambda r: {
                **r,
                "from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}],
            },
            False,
        ),
        (lambda r: {**r, "from": [{"podSelector": {}}]}, False),
        (lambda r: {**r, "from": [{"namespaceSelector": {}}]}, True),
        (
            lambda r: {
                **r,
                "from": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "In",
                                    "values": ["fluxwatch-system"],
                                }
                            ]
                        }
                    }
                ],
            },
            True,
        ),
    ],
)
def test_what_admits_fluxwatch(change: Any, admitted: bool) -> None:
    component = copy.deepcopy(COMPONENT)
    component["spec"]["ingress"] = [change(component["spec"]["ingress"][0])]
    finding = check_flux_ingress(
        [*FLUX_DEFAULTS, component], flux_namespace="flux-system", namespace="fluxwatch-system"
    )
    assert (finding.level is Level.PASS) is admitted, finding.message
