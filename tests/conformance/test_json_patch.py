"""JSON patch (``kubectl patch --type=json``): the handler first decodes the patch into
its own operation struct (field validation Warn, the default, or kubectl's Strict), a
400 naming the Go types; anything else wrong is found while applying it and answered
with the generic 422 whose empty details hide the reason, a failed ``test`` included.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import Api
from tests.conftest import helmrelease

HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"
GENERIC_422 = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server rejected our request due to an error in our request",
    "reason": "Invalid",
    "details": {},
    "code": 422,
}


async def json_patch(api: Api, ops: Any, query: str = "") -> tuple[int, Any]:
    return await api.patch(f"{HRS}/podinfo{query}", ops, "application/json-patch+json")


async def test_a_json_patch_whose_test_fails_is_the_generic_422_with_empty_details(
    api: Api,
) -> None:
    """The patch handler wraps the JSON patch library's error in
    NewGenericServerResponse(422, ...): the reason the test failed does not reach the
    client, which kubectl prints as ``The request is invalid: the server rejected our
    request due to an error in our request``."""
    await api.post(HRS, helmrelease("podinfo"))
    ops = [{"op": "test", "path": "/spec/interval", "value": "5m"}]
    assert await json_patch(api, ops) == (422, GENERIC_422)


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "move", "from": "/spec/nothing", "path": "/spec/x"}],
        [{"op": "remove", "path": "/spec/suspend"}],
        [{"op": "replace", "path": "spec/interval", "value": "5m"}],
        [{"op": "test", "path": "/spec/interval"}],
        [{"op": "frobnicate", "path": "/spec"}],
        [None],
    ],
    ids=["from-missing", "remove-missing", "no-slash", "test-no-value", "unknown-op", "null-op"],
)
async def test_an_operation_that_does_not_apply_is_the_generic_422(api: Api, ops: Any) -> None:
    await api.post(HRS, helmrelease("podinfo"))
    assert await json_patch(api, ops) == (422, GENERIC_422)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (
            {"op": "add"},
            "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp",
        ),
        (["add"], "json: cannot unmarshal string into Go value of type handlers.jsonPatchOp"),
        (
            [{"op": "add", "path": 5, "value": 1}],
            "json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string",
        ),
        (
            [{"op": True, "path": "/spec"}],
            "json: cannot unmarshal bool into Go struct field jsonPatchOp.op of type string",
        ),
    ],
    ids=["not-a-list", "not-an-object", "path-number", "op-bool"],
)
async def test_a_patch_that_does_not_decode_is_400_naming_the_handlers_types(
    api: Api, ops: Any, message: str
) -> None:
    await api.post(HRS, helmrelease("podinfo"))
    code, status = await json_patch(api, ops)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == f"error decoding patch: {message}"


async def test_with_field_validation_ignore_the_library_decodes_the_patch(api: Api) -> None:
    await api.post(HRS, helmrelease("podinfo"))
    code, status = await json_patch(api, ["add"], "?fieldValidation=Ignore")
    assert code == 400
    assert status["message"] == (
        "json: cannot unmarshal string into Go value of type jsonpatch.Operation"
    )
    code, status = await json_patch(api, [{"op": "add", "path": 5}], "?fieldValidation=Ignore")
    assert (code, status) == (422, GENERIC_422)


async def test_an_add_without_a_value_adds_null_which_the_schema_then_refuses(api: Api) -> None:
    """The library adds null for a missing value; the custom resource's decoding drops a
    null its schema does not allow, so the required interval is missing."""
    await api.post(HRS, helmrelease("podinfo"))
    code, status = await json_patch(api, [{"op": "replace", "path": "/spec/interval"}])
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith(
        'HelmRelease.helm.toolkit.fluxcd.io "podinfo" is invalid: [spec.interval: Required value,'
    )


async def test_a_null_patch_changes_nothing(api: Api) -> None:
    _, created = await api.post(HRS, helmrelease("podinfo"))
    code, patched = await json_patch(api, None)
    assert code == 200
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
