"""Our HelmRelease CRD (fluxwatch/sim/crds/helmrelease.yaml) behaves as helm-controller's
published one: on the same objects both prune the same paths, default to the same
object and report the same field errors. Flux's other published CRDs compile and
accept a minimal object."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxwatch.sim.crds import load
from fluxwatch.sim.schema import Schema
from tests.conftest import FLUX_CRDS

UPSTREAM = FLUX_CRDS / "helm.toolkit.fluxcd.io_helmreleases.yaml"
GROUP = "helm.toolkit.fluxcd.io"

pytestmark = pytest.mark.skipif(not UPSTREAM.exists(), reason="Flux's published CRDs not present")


def _version(crd: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in crd["spec"]["versions"] if v["name"] == name)


@pytest.fixture(scope="module")
def upstream_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(UPSTREAM.read_text())
    return crd


@pytest.fixture(scope="module")
def schemas(upstream_crd: dict[str, Any]) -> tuple[Schema, Schema]:
    ours = Schema.compile(
        _version(load("helmrelease"), "v2")["schema"]["openAPIV3Schema"],
        kind="HelmRelease",
        group=GROUP,
    )
    theirs = Schema.compile(
        _version(upstream_crd, "v2")["schema"]["openAPIV3Schema"], kind="HelmRelease", group=GROUP
    )
    return ours, theirs


def hr(spec: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            **(spec or {}),
        },
    }
    obj.update(top)
    return obj


def ref_hr(**spec: Any) -> dict[str, Any]:
    obj = hr()
    del obj["spec"]["chart"]
    obj["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "podinfo"}
    obj["spec"].update(spec)
    return obj


def _chart(**spec: Any) -> dict[str, Any]:
    base = {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}
    base.update(spec)
    return {"spec": base}


DUR = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"

# name -> (object, old object or None)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
    "minimal chart": (hr(), None),
    "minimal chartRef": (ref_hr(), None),
    "full valid": (
        hr(
            {
                "releaseName": "pod",
                "targetNamespace": "web",
                "storageNamespace": "web",
                "serviceAccountName": "helm",
                "maxHistory": 5,
                "suspend": False,
                "timeout": "10m",
                "persistentClient": True,
                "dependsOn": [{"name": "db", "namespace": "data", "readyExpr": "true"}],
                "install": {
                    "crds": "CreateReplace",
                    "remediation": {"retries": 3},
                    "strategy": {"name": "RetryOnFailure", "retryInterval": "1m"},
                },
                "upgrade": {
                    "crds": "Skip",
                    "remediation": {"strategy": "rollback"},
                    "strategy": {"name": "RetryOnFailure", "retryInterval": "30s"},
                },
                "rollback": {"serverSideApply": "auto", "timeout": "1h"},
                "uninstall": {"deletionPropagation": "foreground"},
                "test": {"enable": True, "filters": [{"name": "smoke", "exclude": False}]},
                "driftDetection": {"mode": "warn", "ignore": [{"paths": ["/spec/replicas"]}]},
                "valuesFrom": [
                    {
                        "kind": "ConfigMap",
                        "name": "vals",
                        "valuesKey": "values.yaml",
                        "targetPath": "a.b[0]",
                    }
                ],
                "postRenderers": [
                    {
                        "kustomize": {
                            "images": [{"name": "nginx", "newTag": "1"}],
                            "patches": [{"patch": "- op: add"}],
                        }
                    }
                ],
                "postRenderStrategy": "combined",
                "waitStrategy": {"name": "poller"},
                "healthCheckExprs": [{"apiVersion": "v1", "current": "true"}],
                "commonMetadata": {"labels": {"team": "web"}},
                "kubeConfig": {"secretRef": {"name": "kc", "key": "value"}},
            }
        ),
        None,
    ),
    "values keep anything": (hr({"values": {"a": [1, {"b": None}], "c": {"d": "e"}}}), None),
    "values as a list": (hr({"values": [1, 2]}), None),
    "unknown fields": (
        hr(
            {
                "bogus": 1,
                "chart": {"spec": {**_chart()["spec"], "extra": True}, "x": 1},
                "postRenderers": [{"kustomize": {"other": 1}, "helm": {}}],
            }
        ),
        None,
    ),
    "unknown metadata and top level": (hr(extra={"a": 1}, metadata={"name": "p", "junk": 1}), None),
    "missing interval": (hr({"interval": None}), None),
    "interval integer": (hr({"interval": 300}), None),
    "interval bad pattern": (hr({"interval": "5 minutes"}), None),
    "both chart and chartRef": (hr({"chartRef": {"kind": "HelmChart", "name": "x"}}), None),
    "neither chart nor chartRef": (ref_hr(chartRef=None), None),
    "chart without spec": (hr({"chart": {}}), None),
    "chart spec without sourceRef": (hr({"chart": {"spec": {"chart": "podinfo"}}}), None),
    "sourceRef bad kind": (
        hr({"chart": _chart(sourceRef={"kind": "OCIRepository", "name": "x"})}),
        None,
    ),
    "sourceRef without name": (hr({"chart": _chart(sourceRef={"kind": "HelmRepository"})}), None),
    "sourceRef namespace too long": (
        hr({"chart": _chart(sourceRef={"kind": "Bucket", "name": "b", "namespace": "n" * 64})}),
        None,
    ),
    "chart name empty": (hr({"chart": _chart(chart="")}), None),
    "reconcileStrategy bad": (hr({"chart": _chart(reconcileStrategy="Always")}), None),
    "verify provider default": (hr({"chart": _chart(verify={"secretRef": {"name": "k"}})}), None),
    "verify provider bad": (hr({"chart": _chart(verify={"provider": "gpg"})}), None),
    "chart interval bad": (hr({"chart": _chart(interval="1d")}), None),
    "chartRef bad kind": (ref_hr(chartRef={"kind": "GitRepository", "name": "x"}), None),
    "chartRef without kind": (ref_hr(chartRef={"name": "x"}), None),
    "releaseName too long": (hr({"releaseName": "r" * 54}), None),
    "targetNamespace empty": (hr({"targetNamespace": ""}), None),
    "maxHistory string": (hr({"maxHistory": "5"}), None),
    "maxHistory float": (hr({"maxHistory": 2.5}), None),
    "suspend string": (hr({"suspend": "true"}), None),
    "dependsOn without name": (hr({"dependsOn": [{"namespace": "x"}]}), None),
    "install crds bad": (hr({"install": {"crds": "Replace"}}), None),
    "install remediation retries string": (
        hr({"install": {"remediation": {"retries": "3"}}}),
        None,
    ),
    "install strategy RemediateOnFailure with retryInterval": (
        hr({"install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}}),
        None,
    ),
    "install strategy without name": (hr({"install": {"strategy": {}}}), None),
    "upgrade strategy RemediateOnFailure with retryInterval": (
        hr({"upgrade": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}}),
        None,
    ),
    "upgrade remediation strategy bad": (
        hr({"upgrade": {"remediation": {"strategy": "retry"}}}),
        None,
    ),
    "upgrade chartNameChangeStrategy bad": (
        hr({"upgrade": {"chartNameChangeStrategy": "Rename"}}),
        None,
    ),
    "rollback serverSideApply bad": (hr({"rollback": {"serverSideApply": "yes"}}), None),
    "uninstall default": (hr({"uninstall": {"keepHistory": True}}), None),
    "uninstall deletionPropagation bad": (hr({"uninstall": {"deletionPropagation": "now"}}), None),
    "uninstall timeout bad": (hr({"uninstall": {"timeout": "forever"}}), None),
    "test filter name empty": (hr({"test": {"filters": [{"name": ""}]}}), None),
    "driftDetection mode bad": (hr({"driftDetection": {"mode": "on"}}), None),
    "driftDetection ignore without paths": (hr({"driftDetection": {"ignore": [{}]}}), None),
    "kubeConfig empty": (hr({"kubeConfig": {}}), None),
    "kubeConfig both refs": (
        hr({"kubeConfig": {"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}}),
        None,
    ),
    "kubeConfig secretRef without name": (hr({"kubeConfig": {"secretRef": {}}}), None),
    "valuesFrom bad kind and key": (
        hr(
            {
                "valuesFrom": [
                    {"kind": "Vault", "name": "v", "valuesKey": "a b", "targetPath": "a b"}
                ]
            }
        ),
        None,
    ),
    "valuesFrom without name": (hr({"valuesFrom": [{"kind": "Secret"}]}), None),
    "postRenderStrategy bad": (hr({"postRenderStrategy": "all"}), None),
    "postRenderer image without name": (
        hr({"postRenderers": [{"kustomize": {"images": [{"newTag": "1"}]}}]}),
        None,
    ),
    "waitStrategy bad": (hr({"waitStrategy": {"name": "kstatus"}}), None),
    "healthCheckExprs without current": (hr({"healthCheckExprs": [{"apiVersion": "v1"}]}), None),
    "commonMetadata label not a string": (hr({"commonMetadata": {"labels": {"a": 1}}}), None),
    "status valid": (
        hr(
            status={
                "observedGeneration": 2,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Unknown",
                        "reason": "Progressing",
                        "message": "",
                        "lastTransitionTime": "2024-01-01T00:00:00Z",
                    }
                ],
            }
        ),
        None,
    ),
    "status condition bad": (
        hr(
            status={
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "Maybe",
                        "reason": "1bad",
                        "message": "m",
                        "lastTransitionTime": "yesterday",
                        "observedGeneration": -1,
                    }
                ]
            }
        ),
        None,
    ),
    "status history missing fields": (hr(status={"history": [{"name": "x"}]}), None),
    "status lastAttemptedReleaseAction bad": (
        hr(status={"lastAttemptedReleaseAction": "rollback"}),
        None,
    ),
    "update: CEL ratchets an unchanged invalid strategy": (
        hr(
            {
                "interval": "10m",
                "install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}},
            }
        ),
        hr({"install": {"strategy": {"name": "RemediateOnFailure", "retryInterval": "1m"}}}),
    ),
    "update: new invalid value": (hr({"interval": "soon"}), hr()),
}


def _drop_none(obj: Any) -> Any:
    """Cases mark a field to delete with None: a missing field, not a JSON null."""
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None or k == "b"}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _run(schema: Schema, obj: dict[str, Any], old: dict[str, Any] | None) -> tuple[Any, ...]:
    work = copy.deepcopy(obj)
    pruned = schema.prune(work)
    schema.default(work)
    old_work = None
    if old is not None:
        old_work = copy.deepcopy(old)
        schema.prune(old_work)
        schema.default(old_work)
    found = schema.validate(work, old_work)
    return pruned, work, [(e.type, e.field, str(e)) for e in found]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_our_crd_behaves_as_upstream(schemas: tuple[Schema, Schema], name: str) -> None:
    ours, theirs = schemas
    obj, old = CASES[name]
    obj = _drop_none(obj)
    old = _drop_none(old) if old is not None else None
    assert _run(ours, obj, old) == _run(theirs, obj, old)


def _errors(schemas: tuple[Schema, Schema], name: str) -> list[str]:
    obj, old = CASES[name]
    return [e[2] for e in _run(schemas[0], _drop_none(obj), _drop_none(old) if old else None)[2]]


@pytest.mark.parametrize(
    "name",
    [
        "minimal chart",
        "minimal chartRef",
        "full valid",
        "values keep anything",
        "values as a list",
        "unknown fields",
        "verify provider default",
        "uninstall default",
        "status valid",
        "update: CEL ratchets an unchanged invalid strategy",
    ],
)
def test_valid_objects_pass(schemas: tuple[Schema, Schema], name: str) -> None:
    assert _errors(schemas, name) == []


def test_every_other_case_is_rejected(schemas: tuple[Schema, Schema]) -> None:
    valid = {
        "minimal chart",
        "minimal chartRef",
        "full valid",
        "values keep anything",
        "values as a list",
        "unknown fields",
        "unknown metadata and top level",
        "verify provider default",
        "uninstall default",
        "status valid",
        "update: CEL ratchets an unchanged invalid strategy",
    }
    for name in CASES:
        if name not in valid:
            assert _errors(schemas, name), name


def test_exact_errors_of_the_crd_rules(schemas: tuple[Schema, Schema]) -> None:
    assert _errors(schemas, "both chart and chartRef") == [
        'spec: Invalid value: "object": either chart or chartRef must be set'
    ]
    assert _errors(schemas, "install strategy RemediateOnFailure with retryInterval") == [
        'spec.install.strategy: Invalid value: "object": .retryInterval cannot be set when '
        ".name is 'RemediateOnFailure'"
    ]
    assert _errors(schemas, "upgrade strategy RemediateOnFailure with retryInterval") == [
        'spec.upgrade.strategy: Invalid value: "object": .retryInterval can only be set when '
        ".name is 'RetryOnFailure'"
    ]
    both = (
        'spec.kubeConfig: Invalid value: "object": exactly one of spec.kubeConfig.configMapRef '
        "or spec.kubeConfig.secretRef must be specified"
    )
    assert _errors(schemas, "kubeConfig empty") == [both]
    assert _errors(schemas, "kubeConfig both refs") == [both]
    assert _errors(schemas, "missing interval") == [
        "spec.interval: Required value",
        '<nil>: Invalid value: "null": some validation rules were not checked because the '
        "object was invalid; correct the existing errors to complete validation",
    ]
    assert _errors(schemas, "interval bad pattern") == [
        f"spec.interval: Invalid value: \"5 minutes\": spec.interval in body should match '{DUR}'"
    ]
    assert _errors(schemas, "sourceRef bad kind")[0] == (
        'spec.chart.spec.sourceRef.kind: Unsupported value: "OCIRepository": supported values: '
        '"HelmRepository", "GitRepository", "Bucket"'
    )
    assert _errors(schemas, "releaseName too long")[0] == (
        "spec.releaseName: Too long: may not be more than 53 bytes"
    )
    assert _errors(schemas, "update: new invalid value") == [
        f"spec.interval: Invalid value: \"soon\": spec.interval in body should match '{DUR}'"
    ]


def test_prunes_and_defaults(schemas: tuple[Schema, Schema]) -> None:
    obj, _ = CASES["unknown fields"]
    pruned, work, _ = _run(schemas[0], _drop_none(obj), None)
    assert pruned == [
        "spec.bogus",
        "spec.chart.spec.extra",
        "spec.chart.x",
        "spec.postRenderers[0].helm",
        "spec.postRenderers[0].kustomize.other",
    ]
    assert work["spec"]["chart"]["spec"]["reconcileStrategy"] == "ChartVersion"
    assert work["spec"]["chart"]["spec"]["version"] == "*"
    assert work["status"] == {"observedGeneration": -1}
    pruned, work, _ = _run(schemas[0], _drop_none(CASES["values keep anything"][0]), None)
    assert pruned == []
    assert work["spec"]["values"] == {"a": [1, {"b": None}], "c": {"d": "e"}}
    pruned, _, _ = _run(schemas[0], CASES["unknown metadata and top level"][0], None)
    assert pruned == ["metadata.junk", "extra"]  # metadata's come first, as the decoder's


def test_served_version_names_columns_and_subresources_match(upstream_crd: dict[str, Any]) -> None:
    ours = load("helmrelease")
    assert ours["apiVersion"] == "apiextensions.k8s.io/v1"
    assert ours["metadata"]["name"] == upstream_crd["metadata"]["name"]
    assert ours["spec"]["group"] == upstream_crd["spec"]["group"]
    assert ours["spec"]["scope"] == upstream_crd["spec"]["scope"]
    assert ours["spec"]["names"] == upstream_crd["spec"]["names"]
    pick = ("name", "served", "storage", "subresources", "additionalPrinterColumns", "deprecated")
    assert [{k: v.get(k) for k in pick} for v in ours["spec"]["versions"]] == [
        {k: v.get(k) for k in pick} for v in upstream_crd["spec"]["versions"]
    ]


def test_our_crd_copies_no_upstream_description(upstream_crd: dict[str, Any]) -> None:
    def descriptions(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "description" and isinstance(v, str):
                    found.add(v.strip())
                else:
                    found |= descriptions(v)
        elif isinstance(node, list):
            for v in node:
                found |= descriptions(v)
        return found

    upstream = descriptions(upstream_crd) - {"", "HelmRelease"}
    assert not descriptions(load("helmrelease")) & upstream


MINIMAL: dict[str, dict[str, Any]] = {
    "Alert": {"eventSources": [{"kind": "HelmRelease", "name": "*"}], "providerRef": {"name": "p"}},
    "Provider": {"type": "slack"},
    "GitRepository": {"interval": "1m", "url": "https://example.com/repo.git"},
    "HelmChart": {
        "chart": "podinfo",
        "interval": "1m",
        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
    },
    "HelmRepository": {"url": "https://stefanprodan.github.io/podinfo"},
    "OCIRepository": {"interval": "1m", "url": "oci://ghcr.io/stefanprodan/manifests/podinfo"},
    "HelmRelease": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
}


@pytest.mark.parametrize("path", sorted(FLUX_CRDS.glob("*.yaml")), ids=lambda p: p.name)
def test_flux_crds_compile_and_accept_a_minimal_object(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    kind = crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schema = Schema.compile(
            version["schema"]["openAPIV3Schema"], kind=kind, group=crd["spec"]["group"]
        )
        obj = {
            "apiVersion": f"{crd['spec']['group']}/{version['name']}",
            "kind": kind,
            "metadata": {"name": "x", "namespace": "flux-system"},
            "spec": copy.deepcopy(MINIMAL[kind]),
        }
        assert schema.prune(obj) == []
        schema.default(obj)
        assert schema.validate(obj) == [], f"{kind} {version['name']}"
        bad = copy.deepcopy(obj)
        bad["spec"] = "not an object"
        assert schema.validate(bad), f"{kind} {version['name']} accepted a string spec"


def test_status_subresource_writes_name_paths_from_status(
    schemas: tuple[Schema, Schema],
) -> None:
    old = hr()
    new = copy.deepcopy(old)
    new["status"] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "Maybe",
                "reason": "Progressing",
                "message": "m",
                "lastTransitionTime": "2024-01-01T00:00:00Z",
            }
        ]
    }
    ours, theirs = schemas
    found = [str(e) for e in ours.validate_status(new, old)]
    assert found == [str(e) for e in theirs.validate_status(new, old)]
    assert found[0] == (
        'status.conditions[0].status: Unsupported value: "Maybe": supported values: "True", '
        '"False", "Unknown"'
    )
    new["status"]["conditions"][0]["status"] = "True"
    assert ours.validate_status(new, old) == []


def _flux_schema(filename: str) -> Schema:
    crd = yaml.safe_load((FLUX_CRDS / filename).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return Schema.compile(
        version["schema"]["openAPIV3Schema"],
        kind=crd["spec"]["names"]["kind"],
        group=crd["spec"]["group"],
    )


@pytest.mark.parametrize(
    ("filename", "good", "bad", "message"),
    [
        (
            "source.toolkit.fluxcd.io_gitrepositories.yaml",
            {**MINIMAL["GitRepository"], "provider": "azure", "serviceAccountName": "sa"},
            {**MINIMAL["GitRepository"], "provider": "github", "serviceAccountName": "sa"},
            "serviceAccountName can only be set when provider is 'azure' or 'aws'",
        ),
        (
            "source.toolkit.fluxcd.io_helmcharts.yaml",
            {**MINIMAL["HelmChart"], "verify": {"provider": "cosign"}},
            {
                **MINIMAL["HelmChart"],
                "verify": {"provider": "cosign"},
                "sourceRef": {"kind": "GitRepository", "name": "g"},
            },
            "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'",
        ),
        (
            "notification.toolkit.fluxcd.io_providers.yaml",
            {"type": "github", "commitStatusExpr": "event.metadata.x"},
            {"type": "slack", "commitStatusExpr": "event.metadata.x"},
            "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', "
            "'bitbucketserver', 'bitbucket', 'azuredevops' provider types",
        ),
    ],
)
def test_rules_of_the_other_flux_crds(
    filename: str, good: dict[str, Any], bad: dict[str, Any], message: str
) -> None:
    schema = _flux_schema(filename)

    def check(spec: dict[str, Any]) -> list[str]:
        obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec}
        schema.default(obj)
        return [str(e) for e in schema.validate(obj)]

    assert check(copy.deepcopy(good)) == []
    assert check(copy.deepcopy(bad)) == [f'spec: Invalid value: "object": {message}']
