"""Provider and Alert objects Flux's CRDs accept are accepted by fluxwatch and route the same.

The objects are validated against notification-controller's published v1beta3
CRDs (compiled with the embedded cluster's ``Schema``, which is what a real
API server checks). The reference router below is notification-controller's
``event_handlers.go`` written out (filterAlertsForEvent, eventMatchesAlertSource,
messageIsIncluded/Excluded, combineEventMetadata); fluxwatch's rules must
select the same Alerts for every event and hand on the same metadata.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from pydantic import ValidationError

from fluxwatch.notify.config import NotifySettings
from fluxwatch.notify.event import Event, InvolvedObject
from fluxwatch.notify.providers.flux import forwarded
from fluxwatch.notify.rules import Rule
from fluxwatch.sim.schema import Schema
from tests.conftest import FLUX_CRDS

V1BETA3 = "notification.toolkit.fluxcd.io/v1beta3"

OBJECTS = f"""
apiVersion: {V1BETA3}
kind: Provider
metadata: {{name: slack, namespace: flux-system}}
spec:
  type: slack
  channel: general
  address: https://slack.com/api/chat.postMessage
  interval: 5m
  secretRef: {{name: slack-bot-token}}
---
apiVersion: {V1BETA3}
kind: Provider
metadata: {{name: webhook, namespace: apps}}
spec:
  type: generic
  address: https://hooks.example.com/flux
  timeout: 30s
  certSecretRef: {{name: webhook-tls}}
  proxySecretRef: {{name: corp-proxy}}
---
apiVersion: {V1BETA3}
kind: Provider
metadata: {{name: alertmanager, namespace: flux-system}}
spec:
  type: alertmanager
  address: http://alertmanager-operated.monitoring:9093/api/v2/alerts/
---
apiVersion: {V1BETA3}
kind: Alert
metadata: {{name: platform, namespace: flux-system}}
spec:
  summary: Cluster addons impacted in eu-west-1
  eventMetadata: {{summary: overridden by spec.summary, env: prod, cluster: eu-west-1}}
  providerRef: {{name: slack}}
  eventSeverity: error
  eventSources:
    - kind: HelmRelease
      name: '*'
---
apiVersion: {V1BETA3}
kind: Alert
metadata: {{name: apps-team, namespace: apps}}
spec:
  providerRef: {{name: webhook}}
  eventSources:
    - kind: HelmRelease
      name: podinfo
    - kind: HelmRelease
      name: '*'
      namespace: infra
      matchLabels: {{team: payments}}
  inclusionList: ['stuck', '(?i)FAILED to recover']
  exclusionList: ['^HelmRelease infra/test-', '\\bcanary\\b']
---
apiVersion: {V1BETA3}
kind: Alert
metadata: {{name: on-call, namespace: flux-system}}
spec:
  providerRef: {{name: alertmanager}}
  eventSeverity: info
  eventSources:
    - kind: Kustomization
      name: '*'
    - kind: HelmRelease
      name: redis
      namespace: apps
      apiVersion: helm.toolkit.fluxcd.io/v2beta1
---
apiVersion: {V1BETA3}
kind: Alert
metadata: {{name: paused, namespace: flux-system}}
spec:
  suspend: true
  providerRef: {{name: slack}}
  eventSources:
    - kind: HelmRelease
      name: '*'
"""


def documents() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(OBJECTS))


def schema(kind: str) -> Schema:
    crd = yaml.safe_load((FLUX_CRDS / f"notification.toolkit.fluxcd.io_{kind}s.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta3"]
    return Schema.compile(
        version["schema"]["openAPIV3Schema"],
        kind=crd["spec"]["names"]["kind"],
        group=crd["spec"]["group"],
    )


SCHEMAS = {"Provider": schema("provider"), "Alert": schema("alert")}


def crd_accepts(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it; fails the test if the CRD refuses it."""
    stored = copy.deepcopy(obj)
    kind_schema = SCHEMAS[obj["kind"]]
    assert kind_schema.prune(stored) == [], obj["metadata"]["name"]
    kind_schema.default(stored)
    assert kind_schema.validate(stored) == [], obj["metadata"]["name"]
    return stored


def load(docs: list[dict[str, Any]], **extra: Any) -> NotifySettings:
    return NotifySettings.model_validate(
        {
            "providers": [d for d in docs if d["kind"] == "Provider"],
            "alerts": [d for d in docs if d["kind"] == "Alert"],
            **extra,
        }
    )


# -- notification-controller's routing, written out ---------------------------------------


def flux_selected(alerts: list[dict[str, Any]], event: Event) -> dict[str, dict[str, str]]:
    """Alert name -> the metadata the notifier gets, for the Alerts that take ``event``."""
    obj, wire = event.involved_object, forwarded(event).to_dict()
    selected = {}
    for alert in alerts:
        spec = alert["spec"]
        if spec.get("suspend"):
            continue
        matched = False
        for source in spec["eventSources"]:
            namespace = source.get("namespace") or alert["metadata"]["namespace"]
            if obj.namespace != namespace or obj.kind != source["kind"]:
                continue
            severity = spec.get("eventSeverity", "info")
            if event.severity != severity and severity != "info":
                continue
            if source["name"] not in ("*", obj.name):
                continue
            labels = source.get("matchLabels")
            if labels is None or all(event.labels.get(k) == v for k, v in labels.items()):
                matched = True
                break
        if not matched:
            continue
        inclusion = spec.get("inclusionList") or []
        if inclusion and not any(re2.search(p, event.message) for p in inclusion):
            continue
        if any(re2.search(p, event.message) for p in spec.get("exclusionList") or []):
            continue
        metadata = dict(spec.get("eventMetadata") or {})
        if spec.get("summary"):
            metadata["summary"] = spec["summary"]
        prefix = obj.group + "/"
        for key, value in wire.get("metadata", {}).items():
            if key.startswith(prefix):
                metadata[key.removeprefix(prefix)] = value
        selected[alert["metadata"]["name"]] = metadata
    return selected


def fluxwatch_selected(settings: NotifySettings, event: Event) -> dict[str, dict[str, str]]:
    rules = [Rule.from_spec(a) for a in settings.alerts if not a.suspend]
    return {r.name: dict(r.enhance(event).metadata) for r in rules if r.matches(event)}


RELEASES = [
    ("flux-system", "bp-vpa", {}),
    ("apps", "podinfo", {}),
    ("apps", "redis", {}),
    ("apps", "other", {}),
    ("infra", "db", {"team": "payments"}),
    ("infra", "test-db", {"team": "payments"}),
    ("infra", "cache", {"team": "search"}),
]
MESSAGES = [
    "HelmRelease {ref} has been stuck at Ready=Unknown for 7m0s.",
    "fluxwatch failed to recover HelmRelease {ref}: timed out.",
    "HelmRelease {ref} is Ready again (canary).",
]


def events() -> list[Event]:
    found = []
    for (namespace, name, labels), message, severity in itertools.product(
        RELEASES, MESSAGES, ("info", "error")
    ):
        obj = InvolvedObject.helmrelease(namespace, name)
        found.append(
            Event.new(
                obj,
                severity,
                "StuckDetected",
                message.format(ref=obj.ref),
                metadata={"revision": "1.2.3", "summary": ""},
                labels=labels,
                instance="fluxwatch-0",
            )
        )
    lease = InvolvedObject.lease("flux-system", "helm-controller-leader-election")
    found.append(Event.new(lease, "error", "LeaderFlapping", "flapping", instance="x"))
    return found


def test_every_object_is_one_the_crd_accepts() -> None:
    for doc in documents():
        crd_accepts(doc)


def test_fluxwatch_accepts_them_and_routes_as_notification_controller() -> None:
    docs = [crd_accepts(d) for d in documents()]
    settings = load(docs)
    alerts = [d for d in docs if d["kind"] == "Alert"]
    checked = set()
    for event in events():
        expected = flux_selected(alerts, event)
        assert fluxwatch_selected(settings, event) == expected, event.message
        checked.update(expected)
    # Every live alert took part; the suspended one never did.
    assert checked == {"platform", "apps-team", "on-call"}


def test_flux_compatible_accepts_them_and_reports_the_deprecated_fields() -> None:
    settings = load(documents(), fluxCompatible=True)
    deprecations = settings.deprecations()
    assert any("provider 'slack': interval is deprecated" in d for d in deprecations)
    assert any("alert 'platform': summary is deprecated" in d for d in deprecations)
    slack = settings.provider("slack")
    assert slack.interval == 300 and slack.namespace == "flux-system"
    webhook = settings.provider("webhook")
    assert webhook.cert_secret_ref is not None and webhook.cert_secret_ref.name == "webhook-tls"
    assert webhook.proxy_secret_ref is not None and webhook.proxy_secret_ref.name == "corp-proxy"


def _refusal(doc: dict[str, Any], *, compatible: bool = False) -> str:
    crd_accepts(doc)
    with pytest.raises(ValidationError) as info:
        load([doc], fluxCompatible=compatible)
    return str(info.value)


def provider(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1BETA3,
        "kind": "Provider",
        "metadata": {"name": "p", "namespace": "flux-system"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (
            {"type": "github", "address": "https://github.com/o/r", "commitStatusExpr": "'x'"},
            ["provider type 'github' is not supported", "commit"],
        ),
        (
            {"type": "generic", "commitStatusExpr": "'x'"},
            # The CRD's own CEL rule refuses this one before fluxwatch sees it.
            None,
        ),
        (
            {"type": "googlepubsub", "serviceAccountName": "sa"},
            ["provider type 'googlepubsub' is not supported", "cloud SDK"],
        ),
        (
            {"type": "slack", "serviceAccountName": "sa"},
            ["serviceAccountName", "workload identity"],
        ),
        ({"type": "otel"}, ["provider type 'otel' is not supported"]),
    ],
)
def test_crd_valid_fields_fluxwatch_cannot_honour_are_refused_by_name(
    spec: dict[str, Any], words: list[str] | None
) -> None:
    doc = provider(**spec)
    if words is None:
        stored = copy.deepcopy(doc)
        SCHEMAS["Provider"].default(stored)
        assert SCHEMAS["Provider"].validate(stored)
        return
    text = _refusal(doc)
    for word in words:
        assert word in text


def alert(namespace: str | None = "apps", **spec: Any) -> dict[str, Any]:
    metadata = {"name": "a"} if namespace is None else {"name": "a", "namespace": namespace}
    return {"apiVersion": V1BETA3, "kind": "Alert", "metadata": metadata, "spec": spec}


def test_fluxwatch_extensions_are_refused_when_flux_compatible() -> None:
    extended = NotifySettings.model_validate(
        {
            "fluxCompatible": False,
            "providers": [{"name": "p", "type": "generic", "secretPath": "/etc/hook"}],
            "alerts": [
                {
                    "name": "globs",
                    "providerRef": {"name": "p"},
                    "eventSources": [{"kind": "*", "name": "pod*", "namespace": "app*"}],
                },
                {
                    "name": "leases",
                    "namespace": "flux-system",
                    "providerRef": {"name": "p"},
                    "eventSources": [{"kind": "Lease", "name": "helm-controller-leader-election"}],
                },
                {"name": "everything", "providerRef": {"name": "p"}},
            ],
        }
    )
    problems = extended.extensions()
    assert problems == [
        "alert 'globs': eventSources[0].kind '*' is a glob",
        "alert 'globs': eventSources[0].name 'pod*' is a glob (Flux takes '*' or an exact name)",
        "alert 'globs': eventSources[0].namespace 'app*' is a glob",
        "alert 'leases': eventSources[0].kind 'Lease' is not in Flux's eventSources kinds",
        "alert 'everything': eventSources is left out (Flux requires it)",
        "provider 'p': secretPath (Flux reads keys from secretRef only)",
    ]
    with pytest.raises(ValidationError) as info:
        NotifySettings.model_validate(
            {**extended.model_dump(by_alias=True), "fluxCompatible": True}
        )
    for problem in problems:
        assert problem in str(info.value)


def test_an_alert_whose_sources_have_no_namespace_to_mean_is_refused() -> None:
    doc = alert(
        None, providerRef={"name": "p"}, eventSources=[{"kind": "HelmRelease", "name": "*"}]
    )
    with pytest.raises(ValidationError, match="eventSources\\[0\\] has no namespace"):
        load([provider(type="generic"), doc])


def test_an_empty_event_sources_list_is_refused_not_read_as_everything() -> None:
    text = _refusal(alert(providerRef={"name": "p"}, eventSources=[]))
    assert "eventSources is empty, and in Flux such an Alert matches no event" in text


def test_a_provider_ref_is_in_the_alerts_namespace() -> None:
    doc = alert(
        "apps", providerRef={"name": "p"}, eventSources=[{"kind": "HelmRelease", "name": "*"}]
    )
    with pytest.raises(ValidationError, match="a providerRef is in the Alert's own namespace"):
        load([provider(type="generic"), doc])


def test_an_older_api_version_is_refused_by_name() -> None:
    doc = {**provider(type="generic"), "apiVersion": "notification.toolkit.fluxcd.io/v1beta2"}
    with pytest.raises(ValidationError, match=r"fluxwatch reads Provider objects of .*v1beta3"):
        load([doc])


def test_the_readme_alerting_pair_is_flux_valid_and_routes_as_flux() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Alerting", 1)[1]
    notify = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])["notify"]
    docs = [crd_accepts(d) for d in notify["providers"] + notify["alerts"]]
    settings = load(docs, fluxCompatible=True)
    alerts = [d for d in docs if d["kind"] == "Alert"]
    stuck = Event.new(
        InvolvedObject.helmrelease("flux-system", "bp-vpa"),
        "error",
        "StuckDetected",
        "stuck",
        instance="x",
    )
    elsewhere = Event.new(
        InvolvedObject.helmrelease("apps", "podinfo"),
        "error",
        "StuckDetected",
        "stuck",
        instance="x",
    )
    assert fluxwatch_selected(settings, stuck) == flux_selected(alerts, stuck)
    assert fluxwatch_selected(settings, stuck)["slack"]["summary"] == "Cluster addons impacted"
    assert fluxwatch_selected(settings, elsewhere) == flux_selected(alerts, elsewhere) == {}
