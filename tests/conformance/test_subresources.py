"""Updates, the status subresource, write options, DELETE and finalizers as
kube-apiserver 1.32 answers them (apiextensions-apiserver's custom resource strategies,
rest.BeforeUpdate/BeforeDelete, the generic registry's Update and Delete, apimachinery's
option validation)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from tests.conformance.conftest import Api
from tests.conftest import helmrelease

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"
CMS = "/api/v1/namespaces/default/configmaps"
SECRETS = "/api/v1/namespaces/default/secrets"
EVENTS = "/api/v1/namespaces/default/events"
OTHER_UID = "00000000-0000-0000-0000-000000000000"


async def _hr(api: Api, name: str = "podinfo", **meta: Any) -> dict[str, Any]:
    body = helmrelease(name)
    body["metadata"].update(meta)
    code, created = await api.post(HRS, body)
    assert code == 201, created
    return created


# ---- the status subresource of a custom resource ---------------------------------------


async def test_a_write_to_a_helmrelease_keeps_the_stored_status(api: Api) -> None:
    hr = await _hr(api)
    hr["status"] = {"observedGeneration": 7}
    hr["metadata"]["labels"] = {"team": "a"}
    code, put = await api.put(f"{HRS}/podinfo", hr)
    assert code == 200
    assert put["metadata"]["labels"] == {"team": "a"}
    assert put["status"] == {"observedGeneration": -1}  # the CRD's default, as created
    code, patched = await api.patch(f"{HRS}/podinfo", {"status": {"observedGeneration": 8}})
    assert code == 200 and patched["status"] == {"observedGeneration": -1}


async def test_a_status_write_keeps_everything_but_status_even_labels(api: Api) -> None:
    hr = await _hr(api, labels={"team": "a"})
    body = copy.deepcopy(hr)
    body["metadata"]["labels"] = {"team": "b"}
    body["metadata"]["annotations"] = {"note": "x"}
    body["metadata"]["finalizers"] = ["example.com/keep"]
    body["spec"]["interval"] = "9m"
    body["status"] = {"observedGeneration": 1}
    code, written = await api.put(f"{HRS}/podinfo/status", body)
    assert code == 200
    assert written["status"] == {"observedGeneration": 1}
    assert written["spec"]["interval"] == hr["spec"]["interval"]
    assert written["metadata"]["labels"] == {"team": "a"}
    assert "annotations" not in written["metadata"]
    assert "finalizers" not in written["metadata"]
    assert written["metadata"]["generation"] == 1
    entries = written["metadata"]["managedFields"]
    assert [e["fieldsV1"] for e in entries if e.get("subresource") == "status"] == [
        {"f:status": {"f:observedGeneration": {}}}
    ]


async def test_generation_moves_only_when_something_outside_metadata_changes(api: Api) -> None:
    await _hr(api)
    _, labelled = await api.patch(f"{HRS}/podinfo", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    _, status = await api.patch(f"{HRS}/podinfo/status", {"status": {"observedGeneration": 1}})
    assert status["metadata"]["generation"] == 1
    _, spec = await api.patch(f"{HRS}/podinfo", {"spec": {"interval": "2m"}})
    assert spec["metadata"]["generation"] == 2


# ---- update rules ------------------------------------------------------------------------


async def test_an_update_naming_another_object_is_400(api: Api) -> None:
    hr = await _hr(api)
    code, status = await api.put(
        f"{HRS}/podinfo", {**hr, "metadata": {**hr["metadata"], "name": "x"}}
    )
    assert (code, status["reason"]) == (400, "BadRequest")
    assert (
        status["message"]
        == "the name of the object (x) does not match the name on the URL (podinfo)"
    )
    moved = {**hr, "metadata": {**hr["metadata"], "namespace": "kube-system", "name": "x"}}
    code, status = await api.put(f"{HRS}/podinfo", moved)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (  # the namespace first
        "the namespace of the provided object does not match the namespace sent on the request"
    )
    code, status = await api.patch(f"{HRS}/podinfo", {"metadata": {"namespace": "kube-system"}})
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (  # a patch's checkName words it otherwise
        "the namespace of the object (kube-system) does not match the namespace on the request "
        "(default)"
    )
    code, status = await api.patch(f"{HRS}/podinfo", {"metadata": {"name": "x"}})
    assert status["message"] == (
        "the name of the object (x) does not match the name on the URL (podinfo)"
    )
    code, patched = await api.patch(f"{HRS}/podinfo", {"metadata": {"namespace": None}})
    assert code == 200 and patched["metadata"]["namespace"] == "default"


async def test_a_custom_resource_update_without_resource_version_is_422(api: Api) -> None:
    hr = await _hr(api)
    del hr["metadata"]["resourceVersion"]
    for path in (f"{HRS}/podinfo", f"{HRS}/podinfo/status"):
        code, status = await api.put(path, hr)
        assert code == 422
        assert status["message"] == (  # the generic registry's words: resource, uint64 %#v
            'helmreleases.helm.toolkit.fluxcd.io "podinfo" is invalid: metadata.resourceVersion: '
            "Invalid value: 0x0: must be specified for an update"
        )


async def test_built_in_kinds_take_an_unconditional_update(api: Api) -> None:
    """Those whose strategy allows it; a Lease's does not (test_leases.py)."""
    _, cm = await api.post(CMS, {"metadata": {"name": "c"}, "data": {"k": "1"}})
    _, secret = await api.post(SECRETS, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "c"},
        "reason": "Tested",
        "message": "m",
        "type": "Normal",
        "source": {"component": "conformance"},
    }
    code, event = await api.post(EVENTS, event)
    assert code == 201, event
    event["message"] = "again"
    for path, obj in (
        (f"{CMS}/c", cm),
        (f"{SECRETS}/s", secret),
        (f"{EVENTS}/e", event),
    ):
        del obj["metadata"]["resourceVersion"]
        code, _ = await api.put(path, obj)
        assert code == 200


async def test_a_stale_resource_version_is_409(api: Api) -> None:
    hr = await _hr(api)
    await api.patch(f"{HRS}/podinfo", {"metadata": {"labels": {"a": "b"}}})
    code, status = await api.put(f"{HRS}/podinfo", hr)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on helmreleases.helm.toolkit.fluxcd.io "podinfo": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )
    stale = {"metadata": {"resourceVersion": hr["metadata"]["resourceVersion"]}}
    code, status = await api.patch(f"{HRS}/podinfo/status", stale)
    assert code == 409


async def test_a_put_with_another_uid_fails_its_uid_precondition(api: Api) -> None:
    hr = await _hr(api)
    uid = hr["metadata"]["uid"]
    hr["metadata"]["uid"] = OTHER_UID
    del hr["metadata"]["resourceVersion"]  # the precondition is checked first
    code, status = await api.put(f"{HRS}/podinfo", hr)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on helmreleases.helm.toolkit.fluxcd.io "podinfo": '
        "StorageError: invalid object, Code: 4, Key: "
        "/registry/helm.toolkit.fluxcd.io/helmreleases/default/podinfo, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {OTHER_UID}, UID in "
        f"object meta: {uid}"
    )


async def test_a_patch_changing_uid_or_deletion_is_422_immutable(api: Api) -> None:
    await _hr(api)
    code, status = await api.patch(f"{HRS}/podinfo", {"metadata": {"uid": OTHER_UID}})
    assert code == 422
    assert status["message"] == (
        'HelmRelease.helm.toolkit.fluxcd.io "podinfo" is invalid: metadata.uid: Invalid value: '
        f'"{OTHER_UID}": field is immutable'
    )
    stamp = {"metadata": {"deletionTimestamp": "2020-01-01T00:00:00Z"}}
    await api.post(CMS, {"metadata": {"name": "c"}})
    code, status = await api.patch(f"{CMS}/c", stamp)
    assert code == 422
    assert status["message"] == (
        'ConfigMap "c" is invalid: metadata.deletionTimestamp: Invalid value: '
        "2020-01-01 00:00:00 +0000 UTC: field is immutable"
    )


async def test_an_update_cannot_move_generation_or_creation_time(api: Api) -> None:
    hr = await _hr(api)
    moved = {"metadata": {"generation": 9, "creationTimestamp": "2020-01-01T00:00:00Z"}}
    code, patched = await api.patch(f"{HRS}/podinfo", moved)
    assert code == 200
    assert patched["metadata"]["generation"] == 1
    assert patched["metadata"]["creationTimestamp"] == hr["metadata"]["creationTimestamp"]


async def test_a_create_sets_its_own_identity_and_drops_a_deletion(api: Api) -> None:
    given = {
        "uid": OTHER_UID,
        "generation": 7,
        "creationTimestamp": "2020-01-01T00:00:00Z",
        "deletionTimestamp": "2020-01-01T00:00:00Z",
        "deletionGracePeriodSeconds": 5,
    }
    hr = await _hr(api, **given)
    md = hr["metadata"]
    assert md["uid"] != OTHER_UID and md["generation"] == 1
    assert md["creationTimestamp"] != "2020-01-01T00:00:00Z"
    assert "deletionTimestamp" not in md and "deletionGracePeriodSeconds" not in md
    code, cm = await api.post(CMS, {"metadata": {"name": "c", **given}})
    assert code == 201 and "generation" not in cm["metadata"]


# ---- write options -----------------------------------------------------------------------


async def test_an_unknown_dry_run_value_is_422_naming_the_options(api: Api) -> None:
    code, status = await api.post(f"{CMS}?dryRun=All&dryRun=Nope", {"metadata": {"name": "c"}})
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
        '[]string{"All", "Nope"}: supported values: "All"'
    )
    code, status = await api.patch(f"{CMS}/missing?dryRun=yes", {})
    assert code == 422  # the options are checked before the object is read
    assert status["message"].startswith('PatchOptions.meta.k8s.io "" is invalid: dryRun:')
    code, status = await api.put(f"{CMS}/c?fieldValidation=Loud", {"metadata": {"name": "c"}})
    assert status["message"] == (
        'UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


async def test_a_dry_run_writes_nothing_and_answers_what_would_be_stored(api: Api) -> None:
    code, created = await api.post(f"{HRS}?dryRun=All", helmrelease("podinfo"))
    assert code == 201 and created["spec"]["chart"]["spec"]["version"] == "*"
    assert created["metadata"]["uid"] and "resourceVersion" not in created["metadata"]
    assert (await api.get(f"{HRS}/podinfo"))[0] == 404
    hr = await _hr(api)
    code, patched = await api.patch(f"{HRS}/podinfo?dryRun=All", {"spec": {"suspend": True}})
    assert code == 200 and patched["spec"]["suspend"] is True
    assert patched["metadata"]["generation"] == 2
    _, stored = await api.get(f"{HRS}/podinfo")
    assert stored["metadata"]["resourceVersion"] == hr["metadata"]["resourceVersion"]
    code, deleted = await api.delete(f"{HRS}/podinfo?dryRun=All")
    assert code == 200 and deleted["details"]["uid"] == hr["metadata"]["uid"]
    assert (await api.get(f"{HRS}/podinfo"))[0] == 200


# ---- DELETE ------------------------------------------------------------------------------


async def test_delete_preconditions_that_do_not_hold_are_409_naming_the_kind(api: Api) -> None:
    hr = await _hr(api)
    code, status = await api.delete(f"{HRS}/podinfo", json={"preconditions": {"uid": "x"}})
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on HelmRelease.helm.toolkit.fluxcd.io "podinfo": the UID '
        f"in the precondition (x) does not match the UID in record ({hr['metadata']['uid']}). "
        "The object might have been deleted and then recreated"
    )
    assert status["details"] == {
        "name": "podinfo",
        "group": "helm.toolkit.fluxcd.io",
        "kind": "HelmRelease",
    }
    await api.post(CMS, {"metadata": {"name": "c"}})
    code, status = await api.delete(f"{CMS}/c", json={"preconditions": {"resourceVersion": "1"}})
    assert code == 409
    assert status["message"].startswith(
        'Operation cannot be fulfilled on ConfigMap "c": the ResourceVersion in the precondition '
        "(1) does not match the ResourceVersion in record ("
    )
    assert status["message"].endswith("). The object might have been modified")
    rv = (await api.get(f"{CMS}/c"))[1]["metadata"]["resourceVersion"]
    code, _ = await api.delete(f"{CMS}/c", json={"preconditions": {"resourceVersion": rv}})
    assert code == 200


async def test_a_delete_that_removes_the_object_answers_a_success_status(api: Api) -> None:
    """finalizeDelete: only kinds whose storage sets ReturnDeletedObject answer the
    object; the others (custom resources too) a Status naming it by resource and uid."""
    hr = await _hr(api)
    code, status = await api.delete(f"{HRS}/podinfo")
    assert code == 200
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": "podinfo",
            "group": "helm.toolkit.fluxcd.io",
            "kind": "helmreleases",
            "uid": hr["metadata"]["uid"],
        },
    }
    _, cm = await api.post(CMS, {"metadata": {"name": "c"}})
    _, status = await api.delete(f"{CMS}/c")
    assert status["details"] == {"name": "c", "kind": "configmaps", "uid": cm["metadata"]["uid"]}
    _, sa = await api.post(
        "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "s"}}
    )
    _, deleted = await api.delete("/api/v1/namespaces/default/serviceaccounts/s")
    assert (
        deleted["kind"] == "ServiceAccount" and deleted["metadata"]["uid"] == sa["metadata"]["uid"]
    )


async def test_delete_options_are_checked_before_the_object(api: Api) -> None:
    code, status = await api.delete(f"{CMS}/missing?propagationPolicy=Later")
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Later": '
        'supported values: "Foreground", "Background", "Orphan", "nil"'
    )
    both = {"propagationPolicy": "Orphan", "orphanDependents": True}
    code, status = await api.delete(f"{CMS}/missing", json=both)
    assert status["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Orphan": '
        "orphanDependents and deletionPropagation cannot be both set"
    )
    code, status = await api.delete(f"{CMS}/missing", json={"dryRun": ["None"]})
    assert status["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"None"}: '
        'supported values: "All"'
    )


async def test_a_delete_body_hides_the_query_s_options(api: Api) -> None:
    await api.post(CMS, {"metadata": {"name": "c"}})
    code, _ = await api.delete(f"{CMS}/c?dryRun=All", json={"propagationPolicy": "Background"})
    assert code == 200
    assert (await api.get(f"{CMS}/c"))[0] == 404


async def test_a_grace_period_on_a_kind_without_graceful_deletion_is_ignored(api: Api) -> None:
    await api.post(CMS, {"metadata": {"name": "c"}})
    code, _ = await api.delete(f"{CMS}/c", json={"gracePeriodSeconds": 30})
    assert code == 200
    assert (await api.get(f"{CMS}/c"))[0] == 404


# ---- finalizers --------------------------------------------------------------------------


async def test_an_object_with_finalizers_waits_for_the_last_one(api: Api) -> None:
    await _hr(api, finalizers=["finalizers.fluxcd.io"])
    code, deleting = await api.delete(f"{HRS}/podinfo")
    assert code == 200
    md = deleting["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 0
    assert md["generation"] == 2
    code, again = await api.delete(f"{HRS}/podinfo")
    assert code == 200 and again["metadata"]["resourceVersion"] == md["resourceVersion"]
    code, _ = await api.patch(f"{HRS}/podinfo", {"metadata": {"deletionTimestamp": None}})
    assert code == 200 and (await api.get(f"{HRS}/podinfo"))[1]["metadata"]["deletionTimestamp"]
    code, _ = await api.patch(f"{HRS}/podinfo", {"metadata": {"finalizers": None}})
    assert code == 200
    assert (await api.get(f"{HRS}/podinfo"))[0] == 404


async def test_no_new_finalizer_on_an_object_being_deleted(api: Api) -> None:
    await api.post(CMS, {"metadata": {"name": "c", "finalizers": ["example.com/a"]}})
    await api.delete(f"{CMS}/c")
    more = {"metadata": {"finalizers": ["example.com/a", "example.com/b"]}}
    code, status = await api.patch(f"{CMS}/c", more)
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'ConfigMap "c" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"example.com/b"}'
    )
    code, changed = await api.patch(f"{CMS}/c", {"data": {"k": "v"}})
    assert code == 200 and changed["data"] == {"k": "v"}


async def test_a_create_while_the_name_is_still_being_deleted_is_409_saying_so(
    api: Api,
) -> None:
    await _hr(api, finalizers=["finalizers.fluxcd.io"])
    await api.delete(f"{HRS}/podinfo")
    code, status = await api.post(HRS, helmrelease("podinfo"))
    assert (code, status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == (
        'object is being deleted: helmreleases.helm.toolkit.fluxcd.io "podinfo" already exists'
    )


async def test_a_spec_change_on_a_deleting_helmrelease_is_taken(api: Api) -> None:
    await _hr(api, finalizers=["finalizers.fluxcd.io"])
    await api.delete(f"{HRS}/podinfo")
    code, changed = await api.patch(f"{HRS}/podinfo", {"spec": {"suspend": True}})
    assert code == 200 and changed["spec"]["suspend"] is True
    assert changed["metadata"]["generation"] == 3


# ---- propagation: the garbage collector's finalizers --------------------------------------


async def _owner_and_dependent(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    _, owner = await api.post(CMS, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner"}
    ref["uid"] = owner["metadata"]["uid"]
    _, dependent = await api.post(
        CMS, {"metadata": {"name": "dependent", "ownerReferences": [ref]}}
    )
    return owner, dependent


async def _until_gone(api: Api, path: str) -> None:
    for _ in range(200):
        if (await api.get(path))[0] == 404:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} is still there")


async def test_an_orphaning_delete_waits_for_the_collector_to_free_the_dependents(
    api: Api,
) -> None:
    await _owner_and_dependent(api)
    code, deleting = await api.delete(f"{CMS}/owner", json={"propagationPolicy": "Orphan"})
    assert code == 200
    assert deleting["metadata"]["finalizers"] == ["orphan"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    await _until_gone(api, f"{CMS}/owner")
    _, dependent = await api.get(f"{CMS}/dependent")
    assert "ownerReferences" not in dependent["metadata"]


async def test_a_foreground_delete_takes_the_dependents_first(api: Api) -> None:
    await _owner_and_dependent(api)
    code, deleting = await api.delete(f"{CMS}/owner?propagationPolicy=Foreground")
    assert code == 200
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    await _until_gone(api, f"{CMS}/owner")
    assert (await api.get(f"{CMS}/dependent"))[0] == 404


async def test_a_collection_delete_passes_its_propagation_to_each_object(api: Api) -> None:
    owner, _ = await _owner_and_dependent(api)
    code, listed = await api.delete(
        f"{CMS}?fieldSelector=metadata.name%3Downer&propagationPolicy=Orphan"
    )
    assert code == 200
    assert listed["items"] == [owner]  # the list as it was before the deletes
    await _until_gone(api, f"{CMS}/owner")
    _, dependent = await api.get(f"{CMS}/dependent")
    assert "ownerReferences" not in dependent["metadata"]


async def test_a_foreground_delete_keeps_the_other_finalizers(api: Api) -> None:
    await _hr(api, finalizers=["finalizers.fluxcd.io"])
    body = {"propagationPolicy": "Foreground"}
    _, deleting = await api.delete(f"{HRS}/podinfo", json=body)
    assert deleting["metadata"]["finalizers"] == ["finalizers.fluxcd.io", "foregroundDeletion"]
    for _ in range(100):
        _, hr = await api.get(f"{HRS}/podinfo")
        if hr["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]:
            break
        await asyncio.sleep(0.01)
    assert hr["metadata"]["finalizers"] == ["finalizers.fluxcd.io"]
    assert hr["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]


async def test_managed_fields_a_client_sends_are_decoded_before_validation(api: Api) -> None:
    """The field manager runs in the handler, before the strategy validates: entries it
    cannot decode are replaced by the live object's ownership, never a 422."""
    body = {"metadata": {"name": "c", "managedFields": [{"manager": "me"}]}, "data": {"k": "v"}}
    code, created = await api.post(f"{CMS}?fieldManager=writer", body)
    assert code == 201
    assert [e["manager"] for e in created["metadata"]["managedFields"]] == ["writer"]
    update = {**created, "metadata": {**created["metadata"], "managedFields": [{"manager": "x"}]}}
    code, updated = await api.put(f"{CMS}/c?fieldManager=writer", update)
    assert code == 200
    assert updated["metadata"]["managedFields"] == created["metadata"]["managedFields"]


async def test_a_json_patch_that_does_not_apply_is_a_generic_422(api: Api) -> None:
    """Apply's error is not sent (NewGenericServerResponse); only what the handler's
    decode refuses is a 400."""
    await _hr(api)
    path = f"{HRS}/podinfo"
    json_patch = "application/json-patch+json"
    for ops in (
        [{"op": "test", "path": "/spec/interval", "value": "1h"}],
        [{"op": "remove", "path": "/spec/nothing"}],
        [{"op": "frobnicate", "path": "/spec"}],
        [{"op": "replace", "path": "spec/interval", "value": "1m"}],
    ):
        code, status = await api.patch(path, ops, content_type=json_patch)
        assert (code, status["reason"]) == (422, "Invalid"), ops
        assert status["message"] == "the server rejected our request due to an error in our request"
        assert status["details"] == {}
    code, status = await api.patch(path, [1], content_type=json_patch)
    assert (code, status["reason"]) == (400, "BadRequest")
    # Under the default field validation (Warn) the handler decodes into its own
    # operation struct before jsonpatch.DecodePatch, and words the 400 as its own.
    assert status["message"] == (
        "error decoding patch: json: cannot unmarshal number into Go value of type "
        "handlers.jsonPatchOp"
    )
