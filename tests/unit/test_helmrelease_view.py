"""HRView: how a HelmRelease as helm-controller v1.x writes it is read (FLUX-FACTS §1, §2)."""

from __future__ import annotations

import copy
import gc
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from fluxwatch.kube.fields import parse_rfc3339
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_IGNORE,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_SUSPENDED_AT,
    HRView,
    _read,
    _read_fast,
    hr_event,
    hr_page,
    hr_view,
    release_name,
    shorten_release_name,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture
def ready() -> dict[str, Any]:
    return load("hr_ready.json")


@pytest.fixture
def stuck() -> dict[str, Any]:
    return load("hr_stuck_upstream.json")


def test_ready_release_is_read_field_by_field(ready: dict[str, Any]) -> None:
    """FLUX-FACTS §2: spec, status.conditions, status.history[0] and the status fields."""
    v = hr_view(ready)
    assert v.malformed is None
    assert v.key == ("flux-system", "bp-cert-manager")
    assert v.uid == "3f0c7a52-93d1-4c1e-9a57-5b2f7f1d0c11"
    assert v.resource_version == "1848213"
    assert v.generation == 3
    assert v.observed_generation == 3
    assert dict(v.labels) == {
        "kustomize.toolkit.fluxcd.io/name": "bootstrap-kit",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert not v.suspend and not v.deleting and not v.ignored
    assert v.release_name == "cert-manager"
    assert v.target_namespace == "cert-manager"
    assert v.storage_namespace == "cert-manager"
    assert v.requested_at == "2026-05-05T11:58:02.493845+04:00"
    assert v.last_handled_reconcile_at == v.requested_at
    assert v.force_at is None and v.last_handled_force_at is None
    assert v.last_attempted_release_action == "upgrade"
    assert v.ready is not None and v.released is not None
    assert (v.ready.status, v.ready.reason) == ("True", "UpgradeSucceeded")
    assert v.ready.observed_generation == 3
    assert v.ready.last_transition == parse_rfc3339("2026-05-05T07:52:40Z")
    assert v.released.status == "True"
    assert v.reconciling is None
    assert v.last_release is not None
    assert (v.last_release.name, v.last_release.namespace) == ("cert-manager", "cert-manager")
    assert (v.last_release.version, v.last_release.status) == (2, "deployed")
    assert v.last_release.action == "upgrade"
    assert v.depends_on == (("flux-system", "bp-cilium"),)
    assert (v.last_release.chart_name, v.last_release.chart_version) == (
        "cert-manager",
        "v1.16.2",
    )


def test_upstream_stuck_shape(stuck: dict[str, Any]) -> None:
    """FLUX-FACTS §1/§2: the stuck shape is a single Ready=Unknown/Progressing, no Reconciling,
    no Released, history[0].status=deployed."""
    v = hr_view(stuck)
    assert v.malformed is None
    assert v.ready is not None
    assert (v.ready.status, v.ready.reason) == ("Unknown", "Progressing")
    assert v.ready.message == "Running 'install' action with timeout of 5m0s"
    assert v.ready.last_transition == parse_rfc3339("2026-05-05T07:44:58Z")
    assert v.reconciling is None and v.released is None
    assert v.last_release is not None
    assert (v.last_release.status, v.last_release.version) == ("deployed", 1)
    assert v.last_release.action == "install"
    # No releaseName: the release is <targetNamespace>-<name>, stored in the HR namespace.
    assert v.release_name == "vpa-bp-vpa" == v.last_release.name
    assert v.storage_namespace == "flux-system"
    assert v.observed_generation == -1


@pytest.mark.parametrize(
    ("name", "spec_name", "target", "expected"),
    [
        ("bp-vpa", None, None, "bp-vpa"),
        ("bp-vpa", None, "", "bp-vpa"),
        ("bp-vpa", None, "vpa", "vpa-bp-vpa"),
        ("bp-vpa", "vpa", "vpa", "vpa"),
        ("podinfo", "", "apps", "apps-podinfo"),
    ],
)
def test_release_name_prefix_rules(
    name: str, spec_name: str | None, target: str | None, expected: str
) -> None:
    """FLUX-FACTS §2 (and the seed's defect in §1): releaseName, else [<targetNamespace>-]<name>."""
    assert release_name(name, spec_name, target) == expected


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        # The vectors of helm-controller's own TestShortName.
        ("release-name", "release-name"),
        (
            "release-name-with-very-long-name-which-is-longer-than-53-characters",
            "release-name-with-very-long-name-which-i-788ca0d0d7b0",
        ),
        (
            "another-release-name-with-very-long-name-which-is-longer-than-53-characters",
            "another-release-name-with-very-long-name-7e72150d5a36",
        ),
        ("", ""),
        ("a" * 53, "a" * 53),
    ],
)
def test_release_name_shortening(full: str, expected: str) -> None:
    """FLUX-FACTS §2: over 53 chars -> first 40 + '-' + 12 hex of sha256 of the full name."""
    got = shorten_release_name(full)
    assert got == expected
    assert len(got) <= 53


def test_long_prefixed_name_is_shortened_in_the_view(stuck: dict[str, Any]) -> None:
    """FLUX-FACTS §2: the shortening applies to the composed <targetNamespace>-<name>."""
    stuck["metadata"]["name"] = "observability-grafana-alloy-gateway-collector"
    stuck["spec"]["targetNamespace"] = "sovereign-observability"
    v = hr_view(stuck)
    full = "sovereign-observability-observability-grafana-alloy-gateway-collector"
    assert v.release_name == shorten_release_name(full)
    assert len(v.release_name) == 53
    assert v.release_name.startswith(full[:40] + "-")


def test_storage_namespace_precedence(stuck: dict[str, Any]) -> None:
    """FLUX-FACTS §2: storageNamespace defaults to the HR namespace; the status records where the
    current release lives, and wins over a spec that now points elsewhere."""
    stuck["spec"]["storageNamespace"] = "helm-storage"
    assert hr_view(stuck).storage_namespace == "flux-system"
    del stuck["status"]["storageNamespace"]
    assert hr_view(stuck).storage_namespace == "helm-storage"
    del stuck["spec"]["storageNamespace"]
    assert hr_view(stuck).storage_namespace == "flux-system"


def test_annotations_suspend_and_deletion(ready: dict[str, Any]) -> None:
    """FLUX-FACTS §2/§3: spec.suspend, deletionTimestamp, requestedAt/forceAt annotations."""
    meta = ready["metadata"]
    meta["annotations"].update(
        {
            ANNOTATION_IGNORE: "True",
            ANNOTATION_SUSPENDED_AT: "2026-05-05T08:00:00Z",
            ANNOTATION_REQUESTED_AT: "fw-17",
            ANNOTATION_FORCE_AT: "fw-17",
        }
    )
    meta["deletionTimestamp"] = "2026-05-05T09:00:00Z"
    ready["spec"]["suspend"] = True
    ready["status"]["lastHandledForceAt"] = "fw-16"
    v = hr_view(ready)
    assert v.malformed is None
    assert v.ignored and v.suspend and v.deleting
    assert v.suspended_at == "2026-05-05T08:00:00Z"
    assert v.requested_at == v.force_at == "fw-17"
    assert v.last_handled_force_at == "fw-16"
    meta["annotations"][ANNOTATION_IGNORE] = "false"
    assert not hr_view(ready).ignored


def test_first_condition_of_a_type_wins(ready: dict[str, Any]) -> None:
    """FLUX-FACTS §2: conditions are keyed by type; a duplicate does not replace the first."""
    dup = copy.deepcopy(ready["status"]["conditions"][0])
    dup["status"] = "False"
    ready["status"]["conditions"].append(dup)
    v = hr_view(ready)
    assert v.ready is not None and v.ready.status == "True"


def test_no_status_yet() -> None:
    """FLUX-FACTS §2: a new HelmRelease has no status; the CRD defaults observedGeneration to -1."""
    v = hr_view(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "bp-keda", "namespace": "flux-system", "generation": 1},
            "spec": {"chart": {"spec": {"chart": "keda"}}, "interval": "10m"},
        }
    )
    assert v.malformed is None
    assert v.ready is None and v.last_release is None
    assert v.observed_generation == -1
    assert v.release_name == "bp-keda"
    assert v.target_namespace == v.storage_namespace == "flux-system"
    assert dict(v.labels) == {}
    assert v.depends_on == ()


@pytest.mark.parametrize(
    ("depends_on", "expected"),
    [
        # helm-controller's checkDependencies: an empty namespace is the release's own.
        ([{"name": "bp-cilium"}], (("flux-system", "bp-cilium"),)),
        ([{"name": "bp-cilium", "namespace": ""}], (("flux-system", "bp-cilium"),)),
        ([{"name": "bp-cilium", "namespace": None}], (("flux-system", "bp-cilium"),)),
        # Across namespaces, as Flux follows them.
        ([{"name": "postgres", "namespace": "data"}], (("data", "postgres"),)),
        # readyExpr decides when a dependency is ready, not whether it is one.
        (
            [{"name": "db", "namespace": "data", "readyExpr": "dep.status.history.size() > 0"}],
            (("data", "db"),),
        ),
        # Spec order kept, duplicates too: the view says what the spec says.
        (
            [{"name": "b"}, {"name": "a", "namespace": "x"}, {"name": "b"}],
            (("flux-system", "b"), ("x", "a"), ("flux-system", "b")),
        ),
        ([], ()),
        (None, ()),
    ],
)
def test_depends_on_is_resolved_as_flux_resolves_it(
    ready: dict[str, Any], depends_on: Any, expected: tuple[tuple[str, str], ...]
) -> None:
    """helm-controller ``checkDependencies``: each entry is ``{name, namespace?}``; the typed
    reader takes every one of these (none needs the exact reader) and agrees with it."""
    ready["spec"]["dependsOn"] = depends_on
    exact = _read(ready)
    assert exact.malformed is None
    assert exact.depends_on == expected
    fast = _read_fast(ready)
    assert fast is not None and fast == exact
    assert hr_event(orjson.dumps({"type": "MODIFIED", "object": ready})) == ("MODIFIED", exact)


def test_releases_naming_the_same_dependencies_share_them(ready: dict[str, Any]) -> None:
    """The seed's shape, 30 dependents of one root: one tuple for all, whichever reader."""
    views = []
    for i in range(30):
        obj = copy.deepcopy(ready)
        obj["metadata"]["name"] = f"app-{i}"
        views.append(_read(obj) if i % 3 == 0 else hr_view(obj))
        views.append(hr_event(orjson.dumps({"type": "ADDED", "object": obj}))[1])  # type: ignore[index]
    assert all(v.depends_on is views[0].depends_on for v in views)
    # The same bytes in another namespace resolve to another release.
    other = copy.deepcopy(ready)
    other["metadata"]["namespace"] = "team-a"
    assert hr_view(other).depends_on == (("team-a", "bp-cilium"),)


@pytest.mark.parametrize(
    ("depends_on", "problem"),
    [
        ({"name": "bp-cilium"}, "spec.dependsOn: expected an array, got object"),
        ("bp-cilium", "spec.dependsOn: expected an array, got string"),
        (["bp-cilium"], "spec.dependsOn[0]: expected an object, got string"),
        ([{"name": "a"}, None], "spec.dependsOn[1]: expected an object, got null"),
        ([{"namespace": "data"}], "spec.dependsOn[0].name: missing"),
        ([{"name": ""}], "spec.dependsOn[0].name: missing"),
        ([{"name": None}], "spec.dependsOn[0].name: missing"),
        ([{"name": 7}], "spec.dependsOn[0].name: expected a string, got integer"),
        ([{"name": "a"}, {"name": ["b"]}], "spec.dependsOn[1].name: expected a string, got array"),
        ([{"name": "a", "namespace": 5}], "spec.dependsOn[0].namespace: expected a string"),
    ],
)
def test_malformed_depends_on_is_named(
    ready: dict[str, Any], depends_on: Any, problem: str
) -> None:
    """An entry that names no release makes the view malformed, naming the entry; it never
    raises, and the typed reader leaves it to the exact one, which says what is wrong."""
    ready["spec"]["dependsOn"] = depends_on
    v = hr_view(ready)
    assert v.malformed is not None
    assert problem in v.malformed, v.malformed
    assert _read_fast(ready) is None
    assert hr_event(orjson.dumps({"type": "ADDED", "object": ready})) is None
    assert v.key == ("flux-system", "bp-cert-manager")


def test_malformed_depends_on_keeps_the_entries_it_could_read(ready: dict[str, Any]) -> None:
    """Like every other field: what can be read is read, so a person sees the edges that
    are there; an entry whose namespace cannot be read is no edge (it would point at the
    wrong release)."""
    ready["spec"]["dependsOn"] = [
        {"name": "a"},
        5,
        {"name": "b", "namespace": "x"},
        {"name": "c", "namespace": ["y"]},
        {},
    ]
    v = hr_view(ready)
    assert v.depends_on == (("flux-system", "a"), ("x", "b"))
    assert v.malformed == (
        "spec.dependsOn[1]: expected an object, got integer; "
        "spec.dependsOn[3].namespace: expected a string, got array; "
        "spec.dependsOn[4].name: missing"
    )


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("metadata.name", None, "metadata.name: missing"),
        ("metadata.name", 7, "metadata.name: expected a string, got integer"),
        ("metadata.namespace", "", "metadata.namespace: missing"),
        ("metadata", [], "metadata: expected an object, got array"),
        ("metadata.generation", True, "metadata.generation: expected an integer, got boolean"),
        ("metadata.labels", {"team": 3}, "metadata.labels['team']: expected a string"),
        ("spec.suspend", "true", "spec.suspend: expected a boolean, got string"),
        ("spec.targetNamespace", ["vpa"], "spec.targetNamespace: expected a string, got array"),
        (
            "status.conditions.0.lastTransitionTime",
            "yesterday",
            "status.conditions[0].lastTransitionTime: not an RFC 3339 time: 'yesterday'",
        ),
        (
            "status.conditions.0.lastTransitionTime",
            "2026-05-05T07:44:58",
            "status.conditions[0].lastTransitionTime: not an RFC 3339 time",
        ),
        ("status.conditions.0.status", "Maybe", "status.conditions[0].status: expected True"),
        ("status.conditions.0.type", None, "status.conditions[0].type: missing"),
        ("status.conditions.0", "Ready", "status.conditions[0]: expected an object, got string"),
        ("status.conditions", {"Ready": {}}, "status.conditions: expected an array, got object"),
        ("status.history.0.version", "1", "status.history[0].version: expected an integer"),
        ("status.history.0.version", None, "status.history[0].version: missing"),
        ("status.history.0.name", None, "status.history[0].name: missing"),
        ("status.history", {}, "status.history: expected an array, got object"),
        ("status.observedGeneration", 1.5, "status.observedGeneration: expected an integer"),
        ("metadata.annotations", "x", "metadata.annotations: expected an object, got string"),
    ],
)
def test_malformed_fields_are_named(
    stuck: dict[str, Any], path: str, value: Any, problem: str
) -> None:
    """FLUX-FACTS §2 field types: a wrong field gives .malformed naming it, never an exception."""
    _set(stuck, path, value)
    v = hr_view(stuck)
    assert v.malformed is not None
    assert problem in v.malformed, v.malformed


def test_malformed_view_keeps_what_it_could_read(stuck: dict[str, Any]) -> None:
    """FLUX-FACTS §2: a bad history entry still leaves the name and Ready readable."""
    stuck["status"]["history"][0]["version"] = "one"
    v = hr_view(stuck)
    assert v.malformed is not None
    assert v.key == ("flux-system", "bp-vpa")
    assert v.ready is not None and v.ready.status == "Unknown"
    assert v.last_release is None


@pytest.mark.parametrize("obj", [None, [], "HelmRelease", 42])
def test_not_an_object(obj: Any) -> None:
    """hr_view never raises, even on something that is not a JSON object."""
    v = hr_view(obj)
    assert isinstance(v, HRView)
    assert v.malformed is not None and v.malformed.startswith("<object>:")


def _junk(rng: random.Random) -> Any:
    return rng.choice([None, True, 0, -1, 1.5, "", "x", [], {}, [1, "a"], {"a": None}])


def _mutate(node: Any, rng: random.Random) -> None:
    items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for key, child in items:
        roll = rng.random()
        if roll < 0.08:
            node[key] = _junk(rng)
        elif roll < 0.1 and isinstance(node, dict):
            del node[key]
        elif isinstance(child, dict | list):
            _mutate(child, rng)


def test_random_damage_never_raises(ready: dict[str, Any], stuck: dict[str, Any]) -> None:
    """hr_view never raises: 2,000 randomly damaged copies of realistic HelmReleases."""
    rng = random.Random(925)
    for i in range(2000):
        obj = copy.deepcopy(ready if i % 2 else stuck)
        _mutate(obj, rng)
        v = hr_view(obj)
        assert isinstance(v, HRView)


def test_view_memory_is_under_one_kilobyte(ready: dict[str, Any]) -> None:
    """DESIGN 'HA and scale': 10,000+ tracked releases; a view costs at most ~1 KB."""
    raws = []
    for i in range(2000):
        obj = copy.deepcopy(ready)
        obj["metadata"]["name"] = f"bp-component-{i:05d}"
        obj["metadata"]["uid"] = f"3f0c7a52-93d1-4c1e-9a57-{i:012d}"
        obj["metadata"]["resourceVersion"] = str(1848213 + i)
        obj["spec"]["releaseName"] = f"component-{i:05d}"
        for cond in obj["status"]["conditions"]:
            cond["message"] = (
                f"Helm upgrade succeeded for release cert-manager/component-{i:05d}.v2"
                " with chart cert-manager@v1.16.2"
            )
        obj["status"]["history"][0]["name"] = f"component-{i:05d}"
        raws.append(orjson.dumps(obj))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        views = [hr_view(orjson.loads(raw)) for raw in raws]
        gc.collect()
        per_view = (tracemalloc.get_traced_memory()[0] - before) / len(views)
    finally:
        tracemalloc.stop()
    assert all(v.malformed is None for v in views)
    assert per_view <= 1024, f"{per_view:.0f} bytes per view"


def _variants() -> list[dict[str, Any]]:
    """Every fixture HelmRelease, and each with one field made wrong in a way a real
    cluster (an older CRD, a hand edit, a bug elsewhere) can produce."""
    import copy
    import json
    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    bases = [
        json.loads((fixtures / n).read_text())
        for n in ("hr_ready.json", "hr_stuck_upstream.json", "hr_stalled_upgrade.json")
    ]
    breakages: list[tuple[tuple[str, ...], Any]] = [
        (("spec", "suspend"), "yes"),
        (("spec", "releaseName"), 7),
        (("metadata", "labels"), ["a"]),
        (("metadata", "annotations"), {"fluxwatch.io/ignore": True}),
        (("metadata", "generation"), "1"),
        (("status", "conditions"), "Ready"),
        (("status", "conditions"), [{"type": "Ready", "status": "Maybe"}]),
        (
            ("status", "conditions"),
            [{"type": "Ready", "status": "Unknown", "lastTransitionTime": "yesterday"}],
        ),
        (("status", "history"), [{"version": "3", "status": "deployed"}]),
        (("status", "history"), []),
        (("status", "observedGeneration"), None),
        (("metadata", "deletionTimestamp"), "2026-11-26T10:00:00Z"),
        (("metadata", "annotations"), {"other.io/flag": 1, "fluxwatch.io/ignore": "true"}),
        (("metadata", "name"), ""),
        (("status",), "Failure"),
        (("spec",), None),
        (
            ("status", "conditions"),
            [{"type": "Other", "status": 3}, {"type": "Ready", "status": "Unknown"}],
        ),
        (("status", "conditions"), [{"type": "Ready", "status": "False", "message": None}]),
        (
            ("status", "conditions"),
            [{"type": "Ready", "status": "True", "lastTransitionTime": ""}],
        ),
        (("status", "conditions"), [{"status": "True"}]),
        (
            ("status", "history"),
            [{"name": "x", "version": 2, "status": "deployed"}, {"version": "bad"}],
        ),
        (("status", "history"), [{"name": "x", "version": 1.0, "status": "deployed"}]),
        (("spec", "dependsOn"), [{"name": "db", "namespace": "data", "readyExpr": "true"}]),
        (("spec", "dependsOn"), [{"name": "db", "namespace": ""}, {"name": "cache"}]),
        (("spec", "dependsOn"), [{"name": ""}]),
        (("spec", "dependsOn"), [{"name": "db", "readyExpr": 3}]),
        (("spec", "dependsOn"), [{"name": "db"}, "cache"]),
        (("spec", "dependsOn"), {"name": "db"}),
        (("spec", "dependsOn"), None),
        (("status", "installFailures"), "2"),
        (("status", "lastHandledResetAt"), 5),
        (
            ("status", "conditions"),
            [{"type": "Stalled", "status": "Sure", "reason": "RetriesExceeded"}],
        ),
    ]
    out = []
    for base in bases:
        out.append(base)
        for path, value in breakages:
            obj = copy.deepcopy(base)
            node = obj
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
            out.append(obj)
    return out


@pytest.mark.parametrize("obj", _variants())
def test_the_fast_reader_agrees_with_the_exact_one(obj: dict[str, Any]) -> None:
    """hr_view tries a one-pass reader first and falls back to the field-by-field one
    on anything unusual; whichever answers, the view is the same."""
    fast = _read_fast(obj)
    exact = _read(obj)
    if fast is not None:
        assert fast == exact
    assert hr_view(obj) == exact
    # The same object as a watch line and as a list page, read from bytes.
    event = hr_event(orjson.dumps({"type": "MODIFIED", "object": obj}))
    page = hr_page(
        orjson.dumps({"metadata": {"resourceVersion": "9", "continue": "c"}, "items": [obj]})
    )
    if event is not None:
        assert event == ("MODIFIED", exact)
    if page is not None:
        assert page.views == [exact]
        assert (page.continue_token, page.resource_version) == ("c", "9")


@pytest.mark.parametrize(
    ("kube_config", "remote"),
    [
        ({"secretRef": {"name": "prod-kubeconfig", "key": "value.yaml"}}, True),
        ({"configMapRef": {"name": "prod-cluster"}}, True),
        (None, False),
    ],
)
def test_spec_kubeconfig_makes_a_remote_release(
    stuck: dict[str, Any], kube_config: Any, remote: bool
) -> None:
    """FLUX-FACTS §7: spec.kubeConfig (a Secret, or a ConfigMap for workload identity)
    points helm-controller at another cluster; both readers say so."""
    stuck["spec"]["kubeConfig"] = kube_config
    exact = _read(stuck)
    assert exact.remote is remote
    assert _read_fast(stuck) == exact
    assert hr_event(orjson.dumps({"type": "ADDED", "object": stuck})) == ("ADDED", exact)
    del stuck["spec"]["kubeConfig"]
    assert _read_fast(stuck) == _read(stuck) and not _read(stuck).remote


@pytest.mark.parametrize(
    "fixture", ["hr_ready.json", "hr_stuck_upstream.json", "hr_stalled_upgrade.json"]
)
def test_typed_reader_takes_what_the_api_sends(fixture: str) -> None:
    """Otherwise the agreement above would hold by always falling back."""
    obj = load(fixture)
    assert _read_fast(obj) is not None
    assert hr_event(orjson.dumps({"type": "ADDED", "object": obj})) == ("ADDED", _read(obj))
    page = hr_page(orjson.dumps({"metadata": {}, "items": [obj, obj]}))
    assert page is not None and page.views == [_read(obj)] * 2


def test_typed_reader_leaves_bookmarks_errors_and_junk_to_the_general_way() -> None:
    assert hr_event(b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}') is None
    assert (
        hr_event(b'{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":410}}')
        is None
    )
    assert hr_event(b"{not json") is None
    assert hr_event(b'{"type":"ADDED"}') is None
    assert hr_page(b'{"items":[{"metadata":{"name":"a"}}]}') is None  # no namespace
    # Invalid UTF-8 in a field a view reads: msgspec raises UnicodeDecodeError for it.
    bad = b'{"metadata":{"name":"a","namespace":"b","uid":"\xff"}}'
    assert hr_event(b'{"type":"ADDED","object":' + bad + b"}") is None
    assert hr_page(b'{"items":[' + bad + b"]}") is None
    empty = hr_page(b'{"metadata":{"resourceVersion":"5"},"items":[]}')
    assert empty is not None and empty.views == [] and empty.resource_version == "5"


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a JSON document (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


# What a hand edit, an old CRD or another tool can leave in place of a value.
_REPLACEMENTS: list[Any] = [
    None,
    "",
    "x",
    "2026-W48-4T10:00:00Z",
    "2026-11-26T10:00:00.5+01:00",
    0,
    -1,
    7.5,
    True,
    [],
    ["a"],
    {},
    {"k": 1},
]


def test_the_readers_agree_on_random_breakages() -> None:
    """Seeded mutations of the fixtures: one value anywhere replaced by a value of another
    kind, or one key removed. Whatever the typed reader takes, as a dict, a watch line or
    a list page, must read exactly as the exact reader does; and it must take some."""
    import copy
    import random

    rng = random.Random(20261126)
    # A third base sets every field a view reads that the fixtures leave out.
    full = load("hr_ready.json")
    full["metadata"]["annotations"] = {
        ANNOTATION_IGNORE: "true",
        ANNOTATION_SUSPENDED_AT: "2026-11-26T10:00:00Z",
        ANNOTATION_REQUESTED_AT: "token-1",
        ANNOTATION_FORCE_AT: "token-2",
    }
    full["metadata"]["deletionTimestamp"] = "2026-11-26T10:00:00Z"
    full["spec"].update(
        suspend=True,
        releaseName="rel",
        targetNamespace="tgt",
        storageNamespace="store",
        dependsOn=[
            {"name": "bp-cilium"},
            {"name": "postgres", "namespace": "data", "readyExpr": "true"},
            {"name": "redis", "namespace": ""},
        ],
    )
    full["status"].update(
        lastHandledReconcileAt="token-1",
        lastHandledForceAt="token-0",
        lastAttemptedReleaseAction="upgrade",
        storageNamespace="old-store",
    )
    full["status"]["conditions"].append(
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "Progressing",
            "message": "Fulfilling prerequisites",
            "lastTransitionTime": "2026-11-26T09:59:00Z",
        }
    )
    bases = [load("hr_ready.json"), load("hr_stuck_upstream.json"), full]
    # The object's previous view, whose unchanged parts a watch event's view shares.
    known = {view.key: view for view in map(_read, bases)}
    taken = 0
    for _ in range(1500):
        obj = copy.deepcopy(rng.choice(bases))
        path = rng.choice(_paths(obj))
        parent = obj
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(_REPLACEMENTS))
        exact = _read(obj)
        line = orjson.dumps({"type": "ADDED", "object": obj})
        event = hr_event(line)
        assert hr_event(line, known) == event, path
        page = hr_page(orjson.dumps({"metadata": {}, "items": [obj]}))
        fast = _read_fast(obj)
        if event is not None:
            taken += 1
            assert event == ("ADDED", exact), path
        if page is not None:
            assert page.views == [exact], path
        if fast is not None:
            assert fast == exact, path
        assert (event is None) == (page is None) == (fast is None), path
        assert hr_view(obj) == exact, path
    assert taken > 450, taken


def test_stalled_failed_release_carries_what_a_reset_needs() -> None:
    """FLUX-FACTS §2, §3: an upgrade whose remediation retries are spent (as the simulated
    helm-controller writes it, atomic_release.go): Ready=False UpgradeFailed, Stalled=True
    RetriesExceeded, status.upgradeFailures; status.lastHandledResetAt once a reset was
    handled. Both readers read them."""
    obj = load("hr_stalled_upgrade.json")
    for v in (_read(obj), hr_view(obj)):
        assert v.malformed is None
        assert v.ready is not None and (v.ready.status, v.ready.reason) == (
            "False",
            "UpgradeFailed",
        )
        assert v.stalled is not None
        assert (v.stalled.status, v.stalled.reason) == ("True", "RetriesExceeded")
        assert (v.install_failures, v.upgrade_failures) == (0, 3)
        assert v.last_handled_reset_at is None
    obj["status"]["lastHandledResetAt"] = "2026-11-27T19:00:00.1Z"
    obj["status"]["installFailures"] = 1
    for v in (_read(obj), hr_view(obj)):
        assert v.last_handled_reset_at == "2026-11-27T19:00:00.1Z"
        assert v.install_failures == 1
    obj["status"]["installFailures"] = "1"
    assert hr_view(obj).malformed == "status.installFailures: expected an integer, got string"
    del obj["status"]["conditions"][-1]
    assert hr_view(obj).stalled is None


def _stalled_full() -> dict[str, Any]:
    """A release with every shared part set: four conditions, history, names."""
    obj = load("hr_stalled_upgrade.json")
    obj["spec"].update(targetNamespace="tgt", releaseName="rel")
    obj["status"]["conditions"].append(
        {
            "type": "Reconciling",
            "status": "Unknown",
            "reason": "Progressing",
            "message": "Running 'upgrade' action",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-11-26T09:59:00Z",
        }
    )
    return obj


# One change each to what a view takes from its previous one when unchanged.
_CHANGES: list[tuple[tuple[str | int, ...], Any]] = [
    *(
        (("status", "conditions", i, field), value)
        for i in range(4)
        for field, value in (
            ("status", "Unknown"),
            ("status", "True"),
            ("reason", "Other"),
            ("message", "another message"),
            ("observedGeneration", 9),
            ("lastTransitionTime", "2026-11-27T00:00:00Z"),
        )
    ),
    *(
        (("status", "history", 0, field), value)
        for field, value in (
            ("name", "other"),
            ("version", 99),
            ("status", "failed"),
            ("namespace", "elsewhere"),
            ("action", "install"),
            ("chartName", "other-chart"),
            ("chartVersion", "9.9.9"),
        )
    ),
    (("spec", "targetNamespace"), "other-target"),
    (("spec", "releaseName"), "other-release"),
    (("status", "storageNamespace"), "other-store"),
    (("status", "lastAttemptedReleaseAction"), "install"),
]


def test_an_event_shares_only_what_did_not_change_with_the_previous_view() -> None:
    """The view of a watch event takes its conditions, history[0] and interned names from
    the object's previous view when they are equal: a change to any of them must show,
    and an event that changes none of them must build none of them again."""
    base = _stalled_full()
    before = hr_view(base)
    assert before.malformed is None
    assert None not in (before.ready, before.released, before.reconciling, before.stalled)
    known = {before.key: before}

    base["metadata"]["resourceVersion"] = "2"
    _, same = hr_event(orjson.dumps({"type": "MODIFIED", "object": base}), known) or ("", None)
    assert same is not None and same.resource_version == "2"
    assert same == msgspec.structs.replace(before, resource_version="2")
    for part in ("ready", "released", "reconciling", "stalled", "last_release"):
        assert getattr(same, part) is getattr(before, part), part
    assert same.release_name is before.release_name
    assert same.storage_namespace is before.storage_namespace

    visible = 0
    for path, value in _CHANGES:
        obj = copy.deepcopy(base)
        parent: Any = obj
        for part in path[:-1]:
            parent = parent[part]
        if parent[path[-1]] == value:
            continue  # "True" for a condition that is True, say: no change
        parent[path[-1]] = value
        event = hr_event(orjson.dumps({"type": "MODIFIED", "object": obj}), known)
        expected = _read(obj)
        assert event == ("MODIFIED", expected), path
        # A True condition's message is not kept: changing it changes no view.
        visible += expected != same
    assert visible >= 30, visible
