"""Writes as kube-apiserver answers them: validation of custom and built-in kinds,
field validation, managedFields, server-side apply and generation."""

from __future__ import annotations

from typing import Any

from tests.conformance.conftest import Api
from tests.conftest import helmrelease

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"
CMS = "/api/v1/namespaces/default/configmaps"
NIL_RULES = (
    '<nil>: Invalid value: "null": some validation rules were not checked because the '
    "object was invalid; correct the existing errors to complete validation"
)


async def test_a_helmrelease_without_interval_is_422_naming_the_field(api: Api) -> None:
    body = helmrelease("podinfo")
    del body["spec"]["interval"]
    code, status = await api.post(HRS, body)
    assert code == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        f'HelmRelease.helm.toolkit.fluxcd.io "podinfo" is invalid: '
        f"[spec.interval: Required value, {NIL_RULES}]"
    )
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.interval",
    }


async def test_a_helmrelease_breaking_a_cel_rule_is_422_with_the_rule_s_message(
    api: Api,
) -> None:
    body = helmrelease("podinfo")
    body["spec"]["chartRef"] = {"kind": "OCIRepository", "name": "podinfo"}
    code, status = await api.post(HRS, body)
    assert code == 422
    [cause] = status["details"]["causes"]
    assert cause["field"] == "spec"
    assert cause["message"].endswith("either chart or chartRef must be set")


async def test_a_helmrelease_gets_its_crd_defaults(api: Api) -> None:
    code, created = await api.post(HRS, helmrelease("podinfo"))
    assert code == 201
    chart = created["spec"]["chart"]["spec"]
    assert chart["reconcileStrategy"] == "ChartVersion"
    assert chart["version"] == "*"


async def test_unknown_fields_of_a_custom_resource_are_dropped_with_a_warning(
    api: Api,
) -> None:
    body = helmrelease("podinfo")
    body["spec"]["bogus"] = True
    code, created = await api.post(HRS, body)
    assert code == 201
    assert "bogus" not in created["spec"]
    assert api.last_headers["Warning"] == '299 - "unknown field \\"spec.bogus\\""'


async def test_unknown_fields_under_strict_validation_are_400(api: Api) -> None:
    body = helmrelease("podinfo")
    body["spec"]["bogus"] = True
    code, status = await api.post(f"{HRS}?fieldValidation=Strict", body)
    assert code == 400
    assert status["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.bogus"' in status["message"]
    cm: dict[str, Any] = {"metadata": {"name": "c"}, "data": {}, "bogus": 1}
    code, status = await api.post(f"{CMS}?fieldValidation=Strict", cm)
    assert code == 400
    assert 'strict decoding error: unknown field "bogus"' in status["message"]


async def test_a_config_map_key_with_a_space_is_422(api: Api) -> None:
    code, status = await api.post(CMS, {"metadata": {"name": "c"}, "data": {"a b": "x"}})
    assert code == 422
    [cause] = status["details"]["causes"]
    assert cause["field"] == "data[a b]"
    assert cause["message"].startswith('Invalid value: "a b": a valid config key must consist')


async def test_every_object_carries_managed_fields_of_its_writer(api: Api) -> None:
    code, created = await api.post(
        f"{CMS}?fieldManager=platform-team", {"metadata": {"name": "c"}, "data": {"k": "v"}}
    )
    assert code == 201
    [entry] = created["metadata"]["managedFields"]
    assert entry["manager"] == "platform-team"
    assert entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:k": {}}}


async def test_generation_only_where_the_strategy_keeps_one(api: Api) -> None:
    _, cm = await api.post(CMS, {"metadata": {"name": "c"}})
    assert "generation" not in cm["metadata"]
    _, hr = await api.post(HRS, helmrelease("podinfo"))
    assert hr["metadata"]["generation"] == 1


async def test_server_side_apply_conflicts_name_the_other_manager(api: Api) -> None:
    path = f"{CMS}/settings"
    first = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    first["data"] = {"key": "first"}
    code, _ = await api.patch(
        f"{path}?fieldManager=alice", first, content_type="application/apply-patch+yaml"
    )
    assert code == 201
    second = {**first, "data": {"key": "second"}}
    code, status = await api.patch(
        f"{path}?fieldManager=bob", second, content_type="application/apply-patch+yaml"
    )
    assert code == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.key'
    code, forced = await api.patch(
        f"{path}?fieldManager=bob&force=true", second, content_type="application/apply-patch+yaml"
    )
    assert code == 200 and forced["data"] == {"key": "second"}


async def test_force_is_read_as_every_boolean_query_parameter_is(api: Api) -> None:
    """runtime.Convert_Slice_string_To_bool: only "0" and any case of "false" are false,
    so ``force=TRUE`` and a bare ``force=`` force, and ``force=False`` does not."""
    path = f"{CMS}/settings"
    apply = "application/apply-patch+yaml"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    await api.patch(f"{path}?fieldManager=alice", {**body, "data": {"k": "a"}}, content_type=apply)
    for manager, flag, value in (("bob", "False", "b"), ("bob", "0", "b")):
        code, _ = await api.patch(
            f"{path}?fieldManager={manager}&force={flag}",
            {**body, "data": {"k": value}},
            content_type=apply,
        )
        assert code == 409, flag
    for manager, flag, value in (("bob", "TRUE", "b"), ("carol", "", "c")):
        code, forced = await api.patch(
            f"{path}?fieldManager={manager}&force={flag}",
            {**body, "data": {"k": value}},
            content_type=apply,
        )
        assert code == 200 and forced["data"] == {"k": value}, flag


async def test_force_on_a_merge_patch_is_422(api: Api) -> None:
    await api.post(CMS, {"metadata": {"name": "c"}})
    code, status = await api.patch(f"{CMS}/c?force=true", {"data": {"a": "b"}})
    assert code == 422
    assert status["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for '
        "non-apply patch"
    )
