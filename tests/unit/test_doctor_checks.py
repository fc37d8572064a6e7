"""``fluxwatch doctor``'s checks as pure functions of what it read (no cluster).

FLUX-FACTS §5: Flux's leader-election flags default to lease 35s / renew 30s /
retry 5s; §1: the seed's PRIMARY mitigation stretches them to 60s/40s/5s and
raises memory limits (helm-controller 512Mi, kustomize- and source-controller
384Mi).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from fluxwatch.doctor import (
    Finding,
    Level,
    Need,
    as_json,
    check_access,
    check_api,
    check_leader_election,
    check_memory,
    check_upstream,
    check_version,
    events_address,
    exit_code,
    flag_value,
    image_version,
    needs,
    parse_quantity,
    render,
)
from fluxwatch.kube.client import HELMRELEASES, LEASES, SECRETS
from fluxwatch.kube.probe import Access, Probe
from fluxwatch.notify.providers.flux import DEFAULT_EVENTS_ADDRESS
from fluxwatch.settings import Settings

# helm-controller's container as Flux's install manifests ship it.
FLUX_ARGS = [
    "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
    "--watch-all-namespaces=true",
    "--log-level=info",
    "--log-encoding=json",
    "--enable-leader-election",
]
SEED_ARGS = [
    *FLUX_ARGS,
    "--leader-election-lease-duration=60s",
    "--leader-election-renew-deadline=40s",
    "--leader-election-retry-period=5s",
]


def deployment(args: list[str], memory: str | None = "1Gi", name: str = "manager") -> Any:
    resources = {"limits": {"cpu": "1000m", "memory": memory}} if memory else {}
    sidecar = {
        "name": "sidecar",
        "image": "busybox",
        "args": ["--leader-election-lease-duration=1s"],
    }
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        sidecar,
                        {"name": name, "image": "flux", "args": args, "resources": resources},
                    ]
                }
            }
        }
    }


def settings(**data: Any) -> Settings:
    return Settings.model_validate({"leader": {"namespace": "fluxwatch-system"}, **data})


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--a=1", "--b", "2"], {"--a": "1", "--b": "2"}),
        (["--a=1", "--a=3"], {"--a": "3"}),
        (["--flag", "--other=x"], {"--flag": "true", "--other": "x"}),
        (["--flag"], {"--flag": "true"}),
        (["--ab=1"], {"--a": None}),
    ],
)
def test_flag_values_as_pflag_reads_them(args: list[str], expected: dict[str, str | None]) -> None:
    for name, value in expected.items():
        assert flag_value(args, name) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512Mi", 512 * 1024**2),
        ("1Gi", 1024**3),
        ("1.5Gi", 1.5 * 1024**3),
        ("400M", 400e6),
        ("268435456", 268435456),
        ("1e9", 1e9),
        ("128974848000m", 128974848),
    ],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "Mi", "12 Mi", "1.2.3Gi", "5Xi"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


def test_flux_defaults_are_a_warning_that_names_the_flags_to_set() -> None:
    finding = check_leader_election("helm-controller", deployment(FLUX_ARGS))
    assert finding.level is Level.WARN
    assert "35s/30s/5s (Flux's defaults)" in finding.message
    assert "--leader-election-lease-duration=60s" in finding.message
    assert "--leader-election-renew-deadline=40s" in finding.message


def test_the_seeds_values_pass() -> None:
    finding = check_leader_election("helm-controller", deployment(SEED_ARGS))
    assert finding == Finding(
        "leader-election",
        Level.PASS,
        "helm-controller: lease/renew/retry 60s/40s/5s (advice 60s/40s/5s)",
    )


def test_longer_than_advised_passes_and_half_done_names_what_is_left() -> None:
    longer = [
        *FLUX_ARGS,
        "--leader-election-lease-duration",
        "2m",
        "--leader-election-renew-deadline=90s",
    ]
    assert check_leader_election("source-controller", deployment(longer)).level is Level.PASS
    half = [*FLUX_ARGS, "--leader-election-lease-duration=60s"]
    finding = check_leader_election("source-controller", deployment(half))
    assert finding.level is Level.WARN
    assert "lease-duration" not in finding.message.split("set ")[1]
    assert "--leader-election-renew-deadline=40s" in finding.message


@pytest.mark.parametrize(
    "extra",
    [
        ["--leader-election-lease-duration=30s", "--leader-election-renew-deadline=40s"],
        ["--leader-election-renew-deadline=5s", "--leader-election-retry-period=5s"],
        ["--leader-election-lease-duration=soon"],
    ],
    ids=["lease-not-longer-than-renew", "renew-within-jitter-of-retry", "not-a-duration"],
)
def test_values_client_go_refuses_fail(extra: list[str]) -> None:
    assert check_leader_election(
        "kustomize-controller", deployment([*FLUX_ARGS, *extra])
    ).level is (Level.FAIL)


def test_leader_election_switched_off_is_a_warning() -> None:
    finding = check_leader_election(
        "helm-controller", deployment([*FLUX_ARGS, "--enable-leader-election=false"])
    )
    assert finding.level is Level.WARN
    assert "--enable-leader-election=false" in finding.message


@pytest.mark.parametrize(
    ("controller", "memory", "level"),
    [
        ("helm-controller", "1Gi", Level.PASS),
        ("helm-controller", "512Mi", Level.PASS),
        ("helm-controller", "384Mi", Level.WARN),
        ("kustomize-controller", "384Mi", Level.PASS),
        ("source-controller", "256Mi", Level.WARN),
        ("source-controller", None, Level.PASS),
        ("source-controller", "lots", Level.WARN),
    ],
)
def test_memory_limits_against_the_advice(
    controller: str, memory: str | None, level: Level
) -> None:
    finding = check_memory(controller, deployment(FLUX_ARGS, memory))
    assert finding.level is level, finding.message


def test_the_container_named_manager_is_read_else_the_first() -> None:
    assert check_memory("helm-controller", deployment(FLUX_ARGS, "256Mi")).level is Level.WARN
    only = {"spec": {"template": {"spec": {"containers": [{"name": "hc", "args": SEED_ARGS}]}}}}
    assert check_leader_election("helm-controller", only).level is Level.PASS


def test_the_helmrelease_api() -> None:
    def doc(*versions: str) -> dict[str, Any]:
        return {
            "versions": [{"version": v} for v in versions],
            "preferredVersion": {"version": versions[0]},
        }

    assert check_api(None).level is Level.FAIL
    assert check_api(doc("v2beta2", "v2beta1")).level is Level.FAIL
    passed = check_api(doc("v2", "v2beta2"))
    assert passed.level is Level.PASS
    assert "v2 (preferred), v2beta2" in passed.message


def _keys(found: list[Need]) -> set[tuple[str, str, str | None, str | None]]:
    return {(n.verb, n.res.plural, n.subresource, n.namespace) for n in found}


def test_needs_follow_the_settings() -> None:
    default = _keys(needs(settings()))
    assert ("list", "helmreleases", None, None) in default
    assert ("patch", "helmreleases", None, "flux-system") in default
    assert ("watch", "leases", None, "flux-system") in default
    assert ("create", "leases", None, "fluxwatch-system") in default
    assert ("update", "leases", None, "fluxwatch-system") in default
    assert ("list", "secrets", None, None) in default
    assert not any(sub == "status" for _, _, sub, _ in default)

    tuned = _keys(
        needs(
            settings(
                watch={"namespaces": ["apps", "infra"], "verifyStorage": "never"},
                recovery={"statusCorrect": True},
                leader={"namespace": "fluxwatch-system", "enabled": False},
                notify={
                    "providers": [
                        {"name": "slack", "type": "slack", "secretRef": {"name": "slack"}},
                        {"name": "events", "type": "kubernetes-event"},
                    ]
                },
            )
        )
    )
    assert ("patch", "helmreleases", "status", "apps") in tuned
    assert ("patch", "helmreleases", "status", "infra") in tuned
    assert ("list", "helmreleases", None, None) not in tuned
    assert not any(plural == "secrets" and verb == "list" for verb, plural, _, _ in tuned)
    assert ("get", "secrets", None, "fluxwatch-system") in tuned
    assert ("create", "events", None, "apps") in tuned
    assert ("patch", "events", None, "apps") in tuned
    # Recording Events is the default: on the releases, the Flux Leases, its own Lease.
    for ns in ("flux-system", "fluxwatch-system"):
        assert ("create", "events", None, ns) in default
        assert ("patch", "events", None, ns) in default
    off = _keys(needs(settings(events={"record": False})))
    assert not any(plural == "events" for _, plural, _, _ in off)
    assert not any(ns == "fluxwatch-system" and plural == "leases" for _, plural, _, ns in tuned)


def test_access_answers() -> None:
    need = Need("list", SECRETS, None, "the Helm storage check", Level.WARN, without="add it")
    denied = Probe("list", "secrets", None, Access.DENIED, "403 Forbidden")
    finding = check_access(need, denied)
    assert finding.level is Level.WARN
    assert finding.message.startswith("may not list secrets cluster-wide")
    assert "add it" in finding.message

    patch = Need("patch", HELMRELEASES, "apps", "force-reconcile")
    assert check_access(patch, Probe("patch", "hr", "apps", Access.DENIED)).level is Level.FAIL
    unknown = check_access(patch, Probe("patch", "hr", "apps", Access.UNKNOWN, "500"))
    assert unknown.level is Level.WARN
    assert unknown.message.startswith("could not check")
    lease = Need("create", LEASES, "fluxwatch-system", "leader election")
    allowed = check_access(lease, Probe("create", "leases", "fluxwatch-system", Access.ALLOWED))
    assert allowed.level is Level.PASS


def test_events_address() -> None:
    assert events_address(settings()) == (DEFAULT_EVENTS_ADDRESS, False)
    flux = settings(
        notify={"providers": [{"name": "nc", "type": "flux", "address": "http://nc.flux:80/"}]}
    )
    assert events_address(flux) == ("http://nc.flux:80/", True)
    assert events_address(flux, "http://elsewhere/") == ("http://elsewhere/", True)


def test_render_and_exit_code() -> None:
    findings = [
        Finding("api", Level.PASS, "ok"),
        Finding("memory", Level.WARN, "low"),
    ]
    assert exit_code(findings) == 0
    assert render(findings).splitlines() == [
        "PASS  api     ok",
        "WARN  memory  low",
        "1 passed, 1 warning, 0 failed",
    ]
    assert exit_code([*findings, Finding("rbac", Level.FAIL, "no")]) == 1


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/fluxcd/helm-controller:v1.6.3", (1, 6, 3)),
        ("ghcr.io/fluxcd/helm-controller:v1.5.0@sha256:" + "a" * 64, (1, 5, 0)),
        ("registry.local:5000/fluxcd/helm-controller:v1.4.1-rc.1", (1, 4, 1)),
        ("registry.local:5000/fluxcd/helm-controller", None),
        ("ghcr.io/fluxcd/helm-controller:latest", None),
        ("ghcr.io/fluxcd/helm-controller@sha256:" + "a" * 64, None),
    ],
)
def test_versions_come_from_image_tags(image: str, version: tuple[int, int, int] | None) -> None:
    assert image_version(image) == version


def test_helm_controller_before_the_upstream_fix_is_a_warning() -> None:
    """FLUX-FACTS §1: helm-controller#1411 is first in v1.5.0; it covers failed releases
    only, so a newer controller passes with a note, an older one is a warning."""

    def with_image(image: str) -> Any:
        deploy = deployment(FLUX_ARGS)
        deploy["spec"]["template"]["spec"]["containers"][1]["image"] = image  # "manager"
        return deploy

    old = check_version("helm-controller", with_image("ghcr.io/fluxcd/helm-controller:v1.4.1"))
    assert old.level is Level.WARN and "predates v1.5.0" in old.message
    new = check_version("helm-controller", with_image("ghcr.io/fluxcd/helm-controller:v1.5.0"))
    assert new.level is Level.PASS and "helm-controller#1411" in new.message
    unknown = check_version("helm-controller", with_image("ghcr.io/fluxcd/helm-controller"))
    assert unknown.level is Level.WARN and "cannot tell the version" in unknown.message
    other = check_version(
        "source-controller", with_image("ghcr.io/fluxcd/source-controller:v1.0.0")
    )
    assert other.level is Level.PASS


HELM = "ghcr.io/fluxcd/helm-controller"


def upstream(image: str) -> dict[str, tuple[Level, str]]:
    """Each upstream row's level and where the running release stands, by ref and kind."""
    found = check_upstream(image)
    assert all(f.check == "upstream" and f.detail is not None for f in found)
    return {
        f"{f.detail['ref']} {f.detail['kind']}": (f.level, f.detail["applies"])
        for f in found
        if f.detail is not None
    }


def test_upstream_rows_against_a_release_before_the_partial_fix() -> None:
    """FLUX-FACTS §1: v1.4.1 predates #1411 (v1.5.0); it also has the retry-wrapper leak
    (v1.2.0 until v1.5.5) and is past #1320's Ready=Unknown at every reconcile (v1.4.0)."""
    rows = upstream(f"{HELM}:v1.4.1")
    warned = {ref for ref, (level, _) in rows.items() if level is Level.WARN}
    assert warned == {"helm-controller#1411 fix", "helm-controller#1485 regression"}
    assert rows["helm-controller#1411 fix"] == (Level.WARN, "not-yet")
    assert rows["helm-controller#1320 regression"] == (Level.PASS, "fixed")
    assert rows["helm-controller#823 fix"] == (Level.PASS, "in")
    assert rows["helm-controller#1409 report"] == (Level.PASS, "not-yet")
    [partial] = [
        f
        for f in check_upstream(f"{HELM}:v1.4.1")
        if f.detail and f.detail["ref"].endswith("#1411")
    ]
    assert partial.message.startswith(
        "helm-controller v1.4.1 lacks helm-controller#1411 (v1.5.0 of 2026-02-20)"
    )
    assert "fluxwatch: an in-sync release never gets Ready rewritten" in partial.message
    assert partial.message.endswith("(https://github.com/fluxcd/helm-controller/pull/1411)")


def test_upstream_rows_against_v1_4_0_name_its_own_regression() -> None:
    rows = upstream(f"{HELM}:v1.4.0")
    assert rows["helm-controller#1320 regression"] == (Level.WARN, "in")


def test_upstream_rows_against_a_release_before_the_etcd_retry() -> None:
    rows = upstream(f"{HELM}:v1.1.0")
    assert rows["helm-controller#1084 fix"] == (Level.WARN, "not-yet")
    assert rows["helm-controller#1485 regression"] == (Level.PASS, "not-yet")


def test_upstream_rows_against_a_current_release_all_pass_and_say_fluxwatch_still_watches() -> None:
    """FLUX-FACTS §1: the Ready=Unknown shape was reported after #1411, so a release that has
    every fix still gets the report's row, with what fluxwatch does about it."""
    found = check_upstream(f"{HELM}:v1.6.3")
    assert {f.level for f in found} == {Level.PASS}
    [report] = [f for f in found if f.detail and f.detail["kind"] == "report"]
    assert report.message.startswith(
        "helm-controller v1.6.3 is among the releases of helm-controller#1409"
    )
    assert "fluxwatch keeps watching" in report.message


@pytest.mark.parametrize("image", [f"{HELM}@sha256:" + "a" * 64, f"{HELM}:latest", ""])
def test_upstream_rows_without_a_version_tag_say_they_cannot_tell(image: str) -> None:
    [finding] = check_upstream(image)
    assert finding.level is Level.WARN
    assert "has no version tag, so which upstream changes apply is unknown" in finding.message
    assert "helm-controller#1411 (v1.5.0)" in finding.message
    assert finding.detail is not None
    assert {row["applies"] for row in finding.detail["changes"]} == {"unknown"}


def test_json_carries_the_detail_of_a_finding_that_has_one() -> None:
    plain = Finding("api", Level.PASS, "ok")
    [row, *_] = check_upstream(f"{HELM}:v1.4.1")
    doc = orjson.loads(orjson.dumps(as_json([plain, row])))
    assert doc[0] == {"check": "api", "level": "pass", "message": "ok"}
    assert doc[1]["check"] == "upstream" and doc[1]["message"] == row.message
    detail = doc[1]["detail"]
    assert detail["running"] == "v1.4.1" and detail["image"] == f"{HELM}:v1.4.1"
    assert detail["ref"] == "helm-controller#239" and detail["applies"] == "in"
    assert detail["sources"][0] == "https://github.com/fluxcd/helm-controller/pull/239"
    assert set(detail["fluxwatch"]) == {"withIt", "withoutIt"}
