"""Events as kube-apiserver v1.32 takes them (pkg/apis/core/validation/events.go, the
event registry's strategy, and the generic registry's ObjectMeta check that runs after
it): core/v1 keeps the legacy rules, so an old-style Event (no eventTime) is checked
for its namespace, its name only as a path segment and its metadata as every object's;
events.k8s.io/v1 is strict. The shapes are the ones client-go's recorders send."""

from __future__ import annotations

from typing import Any

from tests.conformance.conftest import Api

CORE = "/api/v1/namespaces/default/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/default/events"
RELEASE = ("r" * 62 + ".") * 4 + "r"  # 253 characters: the longest object name
SMP = "application/strategic-merge-patch+json"


def legacy(name: str, **fields: Any) -> dict[str, Any]:
    """What client-go's tools/record sends: no eventTime, source, count, timestamps."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "HelmRelease", "namespace": "default", "name": RELEASE},
        "reason": "RecoveryFailed",
        "message": "m",
        "type": "Warning",
        "source": {"component": "fluxwatch"},
        "firstTimestamp": "2026-03-01T12:00:00Z",
        "lastTimestamp": "2026-03-01T12:00:00Z",
        "count": 1,
        **fields,
    }


def new_style(name: str, **fields: Any) -> dict[str, Any]:
    """What client-go's tools/events sends through events.k8s.io/v1."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "eventTime": "2026-03-01T12:00:00.000000Z",
        "regarding": {"kind": "HelmRelease", "namespace": "default", "name": "podinfo"},
        "reason": "RecoveryFailed",
        "note": "n",
        "type": "Warning",
        "action": "Recover",
        "reportingController": "fluxwatch",
        "reportingInstance": "fluxwatch-7d9f-abcde",
        **fields,
    }


async def test_a_core_event_about_the_longest_object_name_is_stored(api: Api) -> None:
    """The recorder names an Event <object>.<hex nanoseconds>: 270 characters for a
    253-character object. core/v1 checks the name only as a path segment."""
    name = f"{RELEASE}.{1_772_366_400_000_000_000:x}"
    assert len(name) > 253
    code, body = await api.post(CORE, legacy(name))
    assert code == 201, body
    assert body["metadata"]["name"] == name


async def test_events_v1_refuses_a_name_longer_than_a_dns_subdomain(api: Api) -> None:
    name = f"{RELEASE}.{1_772_366_400_000_000_000:x}"
    code, body = await api.post(EVENTS_V1, new_style(name))
    assert code == 422
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["message"].endswith("must be no more than 253 characters")


async def test_a_core_event_without_event_time_may_carry_a_message_of_several_kb(
    api: Api,
) -> None:
    """The note limit (1024) belongs to new-style Events only."""
    code, body = await api.post(CORE, legacy("e1", message="x" * 6000))
    assert code == 201, body
    assert len(body["message"]) == 6000


async def test_a_core_event_with_event_time_keeps_to_the_note_limit(api: Api) -> None:
    body = legacy(
        "e1",
        message="x" * 1025,
        eventTime="2026-03-01T12:00:00.000000Z",
        action="Recover",
        reportingComponent="fluxwatch",
        reportingInstance="fluxwatch-7d9f-abcde",
    )
    code, answer = await api.post(CORE, body)
    assert code == 422
    assert answer["message"] == (
        'Event "e1" is invalid: message: Invalid value: "": can have at most 1024 characters'
    )


async def test_a_core_event_name_is_a_path_segment(api: Api) -> None:
    """The generic registry's ObjectMeta check (path.ValidatePathSegmentName)."""
    code, body = await api.post(CORE, legacy("a/b"))
    assert code == 422
    assert body["message"] == (
        'Event "a/b" is invalid: metadata.name: Invalid value: "a/b": may not contain \'/\''
    )


async def test_a_core_event_annotation_key_is_checked_on_create_and_on_patch(api: Api) -> None:
    bad = {"name": "e1", "namespace": "default", "annotations": {"fluxwatch.io/bad key": "v"}}
    code, body = await api.post(CORE, legacy("e1", metadata=bad))
    assert code == 422
    assert body["message"].startswith(
        'Event "e1" is invalid: metadata.annotations: Invalid value: "fluxwatch.io/bad key": '
        "name part must consist of alphanumeric characters"
    )
    code, _ = await api.post(CORE, legacy("e1"))
    assert code == 201
    patch = {"metadata": {"annotations": {"fluxwatch.io/bad key": "v"}}}
    code, body = await api.patch(f"{CORE}/e1", patch, SMP)
    assert code == 422
    assert body["details"]["causes"][0]["field"] == "metadata.annotations"


async def test_the_recorders_count_patch_is_accepted_on_a_core_event(api: Api) -> None:
    """tools/record's repeat: a strategic merge patch of count, lastTimestamp, message."""
    code, _ = await api.post(CORE, legacy("e1"))
    assert code == 201
    patch = {"count": 2, "lastTimestamp": "2026-03-01T12:00:10Z", "message": "again"}
    code, body = await api.patch(f"{CORE}/e1", patch, SMP)
    assert code == 200, body
    assert (body["count"], body["lastTimestamp"], body["message"]) == (
        2,
        "2026-03-01T12:00:10Z",
        "again",
    )


async def test_a_core_event_may_not_move_to_another_namespaces_object(api: Api) -> None:
    code, _ = await api.post(CORE, legacy("e1"))
    assert code == 201
    patch = {"involvedObject": {"namespace": "apps"}}
    code, body = await api.patch(f"{CORE}/e1", patch, SMP)
    assert code == 422
    assert body["message"] == (
        'Event "e1" is invalid: involvedObject.namespace: Invalid value: "apps": '
        "does not match event.namespace"
    )


async def test_an_event_about_a_cluster_scoped_object_lives_in_default(api: Api) -> None:
    """legacyValidateEvent: an empty involvedObject.namespace is for "" or "default" only."""
    node = {"kind": "Node", "name": "n1"}
    code, _ = await api.post(CORE, legacy("e1", involvedObject=node))
    assert code == 201
    body = legacy("e2", involvedObject=node)
    body["metadata"]["namespace"] = "kube-system"
    code, answer = await api.post("/api/v1/namespaces/kube-system/events", body)
    assert code == 422
    assert answer["message"] == (
        'Event "e2" is invalid: involvedObject.namespace: Invalid value: "": '
        "does not match event.namespace"
    )


async def test_the_events_v1_recorders_series_update_is_accepted_and_the_note_is_not(
    api: Api,
) -> None:
    """tools/events patches a repeat's series (a strategic merge patch, from
    createPatchBytesForSeries); everything else is immutable."""
    code, _ = await api.post(EVENTS_V1, new_style("e1"))
    assert code == 201
    series = {"series": {"count": 2, "lastObservedTime": "2026-03-01T12:00:10.000000Z"}}
    code, body = await api.patch(f"{EVENTS_V1}/e1", series, SMP)
    assert code == 200, body
    code, body = await api.patch(f"{EVENTS_V1}/e1", {"note": "changed"})
    assert code == 422
    assert body["message"] == (
        'Event.events.k8s.io "e1" is invalid: message: Invalid value: "changed": field is immutable'
    )
    code, body = await api.patch(f"{EVENTS_V1}/e1", {"series": {"count": 1}})
    assert code == 422
    assert body["message"] == (
        'Event.events.k8s.io "e1" is invalid: series.count: Invalid value: "": should be at least 2'
    )


async def test_a_core_event_reads_back_with_the_fields_go_always_writes(api: Api) -> None:
    """corev1.Event's involvedObject and source are structs, its times are written as
    null when zero, and reportingComponent/reportingInstance have no omitempty."""
    body = {
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "HelmRelease", "namespace": "default", "name": "p"},
        "reason": "R",
        "message": "m",
    }
    code, created = await api.post(CORE, body)
    assert code == 201
    code, got = await api.get(f"{CORE}/e1")
    assert code == 200
    for event in (created, got):
        assert {k: event[k] for k in event if k not in ("metadata", "involvedObject")} == {
            "apiVersion": "v1",
            "kind": "Event",
            "reason": "R",
            "message": "m",
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
        }


async def test_a_put_of_a_missing_event_creates_it(api: Api) -> None:
    """The event strategy's AllowCreateOnUpdate: 201, whatever resourceVersion was sent;
    a kind without it (a ConfigMap) stays 404."""
    body = legacy("e1")
    body["metadata"]["resourceVersion"] = "12345"
    code, created = await api.put(f"{CORE}/e1", body)
    assert code == 201, created
    assert created["metadata"]["resourceVersion"] != "12345"
    code, got = await api.get(f"{CORE}/e1")
    assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]
    code, _ = await api.put(f"{CORE}/e1", {**body, "metadata": got["metadata"], "count": 2})
    assert code == 200
    code, _ = await api.put(
        "/api/v1/namespaces/default/configmaps/c", {"metadata": {"name": "c"}, "data": {}}
    )
    assert code == 404


async def test_a_put_of_a_missing_lease_creates_it_too(api: Api) -> None:
    """The lease strategy answers AllowCreateOnUpdate as the event strategy does: a PUT
    of a Lease that is not there creates it (201), whatever resourceVersion the body
    carried. (A body carrying the deleted Lease's uid fails its precondition instead:
    test_leases.py.)"""
    leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "resourceVersion": "12345"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    code, created = await api.put(f"{leases}/l", lease)
    assert code == 201, created
    assert created["metadata"]["resourceVersion"] != "12345"
    assert created["spec"]["holderIdentity"] == "a"
    code, got = await api.get(f"{leases}/l")
    assert code == 200 and got["metadata"]["uid"] == created["metadata"]["uid"]


async def test_a_put_that_creates_an_event_needs_create_as_well_as_update(api: Api) -> None:
    """The update handler authorizes create for a create on update (withAuthorization):
    its 403 carries RBAC's empty reason; an invalid body is 422 before that."""
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    role = {
        "metadata": {"name": "updater"},
        "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["update"]}],
    }
    assert (await api.post(f"{rbac}/roles", role))[0] == 201
    binding = {
        "metadata": {"name": "updater"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "updater"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "default"}],
    }
    assert (await api.post(f"{rbac}/rolebindings", binding))[0] == 201
    token = api.server.token_for("system:serviceaccount:default:bot")
    bot = {"Authorization": f"Bearer {token}"}
    code, answer = await api.put(f"{CORE}/e1", legacy("e1"), headers=bot)
    assert code == 403
    assert answer["message"] == 'events "e1" is forbidden: '
    assert answer["details"] == {"name": "e1", "kind": "events"}
    invalid = legacy("e1", involvedObject={"kind": "X", "namespace": "apps", "name": "x"})
    code, answer = await api.put(f"{CORE}/e1", invalid, headers=bot)
    assert code == 422
    assert (await api.get(f"{CORE}/e1"))[0] == 404
