"""Leases as a v1.32 server takes them: the body decoded into ``v1.LeaseSpec`` (Go
types, ``MicroTime``'s one layout; a 400 with the decoder's words), the lease
strategy (CoordinatedLeaderElection's fields dropped with the gate off, no
unconditional update, a PUT that creates), ValidateLeaseSpec's floors (422), and
the optimistic concurrency every leader election stands on (409).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import Api

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
RENEWED = "2026-11-28T05:00:00.123456Z"


def lease(name: str = "l", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": spec,
    }


def cannot_be_handled(problem: str) -> str:
    """transformDecodeError's 400 for a body that does not decode."""
    return f'Lease in version "v1" cannot be handled as a Lease: {problem}'


LAYOUT = '"2006-01-02T15:04:05.000000Z07:00"'


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        # MicroTime.UnmarshalJSON: time.Parse(RFC3339Micro, s) wants exactly six digits.
        (
            "2026-11-28T05:00:00Z",
            f'parsing time "2026-11-28T05:00:00Z" as {LAYOUT}: cannot parse "Z" as ".000000"',
        ),
        (
            "2026-11-28T05:00:00.123Z",
            f'parsing time "2026-11-28T05:00:00.123Z" as {LAYOUT}: cannot parse ".123Z" as '
            '".000000"',
        ),
        (
            "2026-11-28T05:00:00.123456789Z",
            f'parsing time "2026-11-28T05:00:00.123456789Z" as {LAYOUT}: cannot parse "789Z" '
            'as "Z07:00"',
        ),
        ("2026-11-28", f'parsing time "2026-11-28" as {LAYOUT}: cannot parse "" as "T"'),
        (
            "2026-11-28 05:00:00.000000Z",
            f'parsing time "2026-11-28 05:00:00.000000Z" as {LAYOUT}: cannot parse '
            '" 05:00:00.000000Z" as "T"',
        ),
        (
            "2026-02-30T05:00:00.000000Z",
            'parsing time "2026-02-30T05:00:00.000000Z": day out of range',
        ),
        (
            "2026-11-28T05:00:00.000000Zabc",
            'parsing time "2026-11-28T05:00:00.000000Zabc": extra text: "abc"',
        ),
        # The inner json.Unmarshal(b, &str): encoding/json's error, without a field.
        (1_795_000_000, "json: cannot unmarshal number into Go value of type string"),
    ],
)
async def test_a_micro_time_in_another_layout_is_a_400_with_the_parse_error(
    api: Api, sent: Any, problem: str
) -> None:
    for field in ("renewTime", "acquireTime"):
        code, status = await api.post(LEASES, lease(**{field: sent}))
        assert (code, status["reason"], status["message"]) == (
            400,
            "BadRequest",
            cannot_be_handled(problem),
        )
    code, _ = await api.get(f"{LEASES}/l")
    assert code == 404


async def test_a_micro_time_with_an_offset_is_stored_and_answered_in_utc(api: Api) -> None:
    """MarshalJSON writes t.UTC() with six digits: what a client reads back is not what
    it sent, so comparing the two as strings sees a change that is none."""
    code, created = await api.post(
        LEASES, lease(renewTime="2026-11-28T07:00:00.500000+02:00", acquireTime=RENEWED)
    )
    assert code == 201, created
    assert created["spec"] == {
        "renewTime": "2026-11-28T05:00:00.500000Z",
        "acquireTime": RENEWED,
    }
    _, got = await api.get(f"{LEASES}/l")
    assert got["spec"]["renewTime"] == "2026-11-28T05:00:00.500000Z"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (
            {"leaseDurationSeconds": "15"},
            "json: cannot unmarshal string into Go struct field LeaseSpec.spec."
            "leaseDurationSeconds of type int32",
        ),
        (
            {"leaseDurationSeconds": 15.5},
            "json: cannot unmarshal number 15.5 into Go struct field LeaseSpec.spec."
            "leaseDurationSeconds of type int32",
        ),
        (
            {"leaseTransitions": 2_147_483_648},
            "json: cannot unmarshal number 2147483648 into Go struct field LeaseSpec.spec."
            "leaseTransitions of type int32",
        ),
        (
            {"holderIdentity": 7},
            "json: cannot unmarshal number into Go struct field LeaseSpec.spec.holderIdentity "
            "of type string",
        ),
        (
            # The first mismatch is kept while decoding goes on; a MicroTime error ends
            # the decoding and wins.
            {"holderIdentity": True, "renewTime": "now"},
            f'parsing time "now" as {LAYOUT}: cannot parse "now" as "2006"',
        ),
    ],
)
async def test_a_lease_field_of_the_wrong_json_type_is_a_400_naming_the_go_field(
    api: Api, spec: dict[str, Any], problem: str
) -> None:
    code, status = await api.post(LEASES, lease(**spec))
    assert (code, status["message"]) == (400, cannot_be_handled(problem))


async def test_a_spec_that_is_not_an_object_is_a_400(api: Api) -> None:
    body = lease()
    body["spec"] = "held"
    code, status = await api.post(LEASES, body)
    assert (code, status["message"]) == (
        400,
        cannot_be_handled(
            "json: cannot unmarshal string into Go struct field Lease.spec of type v1.LeaseSpec"
        ),
    )


async def test_null_lease_fields_are_absent(api: Api) -> None:
    code, created = await api.post(LEASES, lease(holderIdentity=None, leaseDurationSeconds=15))
    assert code == 201
    assert created["spec"] == {"leaseDurationSeconds": 15}


async def test_lease_numbers_below_their_floors_are_422(api: Api) -> None:
    code, status = await api.post(LEASES, lease(leaseDurationSeconds=0, leaseTransitions=-1))
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'Lease.coordination.k8s.io "l" is invalid: [spec.leaseDurationSeconds: Invalid value: '
        "0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater "
        "than or equal to 0]"
    )


async def test_strategy_and_preferred_holder_are_dropped_with_the_gate_off(api: Api) -> None:
    """CoordinatedLeaderElection is alpha and off in 1.32: PrepareForCreate and
    PrepareForUpdate drop both fields before ValidateLeaseSpec could refuse them."""
    code, created = await api.post(
        LEASES, lease(holderIdentity="a", strategy="Newest", preferredHolder="b")
    )
    assert code == 201, created
    assert created["spec"] == {"holderIdentity": "a"}
    created["spec"].update(strategy="OldestEmulationVersion", preferredHolder="b")
    code, updated = await api.put(f"{LEASES}/l", created)
    assert code == 200
    assert updated["spec"] == {"holderIdentity": "a"}


async def test_a_lease_has_no_generation_and_each_renewal_a_new_resource_version(
    api: Api,
) -> None:
    _, created = await api.post(LEASES, lease(holderIdentity="a", renewTime=RENEWED))
    assert "generation" not in created["metadata"]
    created["spec"]["renewTime"] = "2026-11-28T05:00:02.123456Z"
    code, renewed = await api.put(f"{LEASES}/l", created)
    assert code == 200 and "generation" not in renewed["metadata"]
    assert int(renewed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    # A renewal that changes nothing is not written (etcd's GuaranteedUpdate).
    code, same = await api.put(f"{LEASES}/l", renewed)
    assert code == 200
    assert same["metadata"]["resourceVersion"] == renewed["metadata"]["resourceVersion"]


async def test_a_lease_update_with_a_stale_resource_version_is_409(api: Api) -> None:
    """Two candidates read the same Lease and both PUT it: the second loses."""
    _, read = await api.post(LEASES, lease(holderIdentity="", leaseDurationSeconds=15))
    first = {**read, "spec": {**read["spec"], "holderIdentity": "a"}}
    second = {**read, "spec": {**read["spec"], "holderIdentity": "b"}}
    code, _ = await api.put(f"{LEASES}/l", first)
    assert code == 200
    code, status = await api.put(f"{LEASES}/l", second)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "l": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "l", "group": "coordination.k8s.io", "kind": "leases"}


async def test_a_lease_update_without_resource_version_is_422(api: Api) -> None:
    """The lease strategy answers AllowUnconditionalUpdate false: the generic registry
    words the 422 with the resource where the kind goes and the uint64 zero as %#v."""
    _, created = await api.post(LEASES, lease(holderIdentity="a"))
    del created["metadata"]["resourceVersion"]
    code, status = await api.put(f"{LEASES}/l", created)
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"] == (
        'leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: Invalid value: '
        "0x0: must be specified for an update"
    )
    assert status["details"]["kind"] == "leases"
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0x0: must be specified for an update",
            "field": "metadata.resourceVersion",
        }
    ]


async def test_a_create_of_a_lease_that_exists_is_409_already_exists(api: Api) -> None:
    """Two candidates find no Lease and both create it: the second is told it exists."""
    code, _ = await api.post(LEASES, lease(holderIdentity="a"))
    assert code == 201
    code, status = await api.post(LEASES, lease(holderIdentity="b"))
    assert (code, status["reason"]) == (409, "AlreadyExists")
    assert status["message"] == 'leases.coordination.k8s.io "l" already exists'


async def test_a_renewal_of_a_deleted_lease_fails_its_uid_precondition(api: Api) -> None:
    """A PUT may create a Lease, but the body's uid is a precondition etcd checks against
    the missing object: a leader renewing the Lease it read gets 409, not a new Lease."""
    _, read = await api.post(LEASES, lease(holderIdentity="a", renewTime=RENEWED))
    await api.delete(f"{LEASES}/l")
    uid = read["metadata"]["uid"]
    code, status = await api.put(f"{LEASES}/l", read)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "l": StorageError: '
        "invalid object, Code: 4, Key: /registry/leases/default/l, ResourceVersion: 0, "
        f"AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in object "
        "meta: "
    )
    code, _ = await api.get(f"{LEASES}/l")
    assert code == 404
    # Without the uid (a fresh body), the same PUT creates it.
    del read["metadata"]["uid"]
    code, created = await api.put(f"{LEASES}/l", read)
    assert code == 201 and created["metadata"]["uid"] != uid
