"""Protobuf request bodies decode into exactly the JSON kubectl would have sent: the
bodies are kubectl's own (recorded in tests/fixtures/protobuf, and captured live from
the machine's kubectl), the expected JSON is kubectl's ``--dry-run=client -o json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubectl_recorder import (
    COMMANDS,
    FIXTURES,
    NO_DRY_RUN,
    capture,
    dry_run_json,
    recording_kubectl,
)

from fluxwatch.sim import certs
from fluxwatch.sim.kubectl import find_kubectl
from fluxwatch.sim.protobuf import MEDIA_TYPE, ProtobufError, decode, supports

WITH_JSON = sorted(name for name in COMMANDS if name not in NO_DRY_RUN)
NO_META = {"creationTimestamp": None}


def recorded(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


# ---- a protobuf writer, for bodies kubectl does not send -------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw)


# ---- kubectl's bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_JSON)
def test_a_recorded_kubectl_body_decodes_to_the_json_kubectl_prints(name: str) -> None:
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert decode(recorded(name)) == expected


def test_every_recorded_command_has_its_body() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.bin")) == sorted(COMMANDS)


def test_secret_data_stays_base64_as_in_json() -> None:
    secret = decode(recorded("secret-generic"))
    assert secret["data"] == {"a": "Yg==", "empty": ""}
    assert secret["type"] == "Opaque"
    assert secret["metadata"] == {"name": "s", "namespace": "x", "creationTimestamp": None}


def test_token_request_bodies() -> None:
    unset = {"audiences": None, "expirationSeconds": None, "boundObjectRef": None}
    status = {"token": "", "expirationTimestamp": None}
    assert decode(recorded("token")) == {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": NO_META,
        "spec": unset,
        "status": status,
    }
    assert decode(recorded("token-bound"))["spec"] == {
        "audiences": ["a", "b"],
        "expirationSeconds": 600,
        "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s", "uid": "0d4691ed"},
    }


def test_self_subject_access_review_bodies() -> None:
    assert decode(recorded("can-i")) == {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": NO_META,
        "spec": {
            "resourceAttributes": {
                "namespace": "x",
                "verb": "get",
                "resource": "secrets",
                "name": "s",
            }
        },
        "status": {"allowed": False},
    }
    assert decode(recorded("can-i-non-resource"))["spec"] == {
        "nonResourceAttributes": {"path": "/logs", "verb": "get"}
    }


def test_self_subject_review_body() -> None:
    assert decode(recorded("whoami")) == {
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": NO_META,
        "status": {"userInfo": {}},
    }


async def test_the_installed_kubectl_sends_bodies_that_decode_to_its_json(tmp_path: Path) -> None:
    if find_kubectl() is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    cert, key = certs.self_signed()
    commands = [
        ["create", "secret", "generic", "s", "--from-literal=a=b", "-n", "x"],
        ["create", "secret", "tls", "t", f"--cert={cert}", f"--key={key}"],
    ]
    async with recording_kubectl(tmp_path) as (recorder, kubectl):
        for args in commands:
            sent = await capture(kubectl, recorder, args)
            assert sent.content_type == MEDIA_TYPE
            # kubectl takes a JSON answer as well: the emulator's answers are JSON.
            assert "application/json" in sent.accept.split(",")
            assert decode(sent.body) == await dry_run_json(kubectl, args)
        whoami = await capture(kubectl, recorder, ["auth", "whoami"])
        assert decode(whoami.body)["kind"] == "SelfSubjectReview"


# ---- the JSON rules beyond kubectl's bodies -------------------------------------------------


def test_object_meta_times_managed_fields_and_pointers() -> None:
    time = vi(1, 1_700_000_000) + vi(2, 5)
    managed = ld(1, "kubectl") + ld(2, "Apply") + ld(4, time) + ld(7, ld(1, b'{"f:data":{}}'))
    owner = ld(5, "v1") + ld(1, "ConfigMap") + ld(3, "o") + ld(4, "u-1") + vi(6, 0)
    meta = (
        ld(1, "c")
        + vi(7, 0)
        + ld(8, time)
        + vi(10, -1)
        + ld(11, ld(1, "team") + ld(2, "web"))
        + ld(13, owner)
        + ld(17, managed)
    )
    obj = decode(envelope("v1", "ConfigMap", ld(1, meta)))
    assert obj["metadata"] == {
        "name": "c",
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "deletionGracePeriodSeconds": -1,
        "labels": {"team": "web"},
        "ownerReferences": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "o",
                "uid": "u-1",
                "controller": False,
            }
        ],
        "managedFields": [
            {
                "manager": "kubectl",
                "operation": "Apply",
                "time": "2023-11-14T22:13:20Z",
                "fieldsV1": {"f:data": {}},
            }
        ],
    }


def test_delete_options_decode_under_any_group_version() -> None:
    raw = vi(1, 0) + ld(2, ld(2, "42")) + ld(4, "Foreground") + ld(5, "All")
    for api_version in ("v1", "apps/v1", "meta.k8s.io/v1"):
        assert supports(api_version, "DeleteOptions")
        assert decode(envelope(api_version, "DeleteOptions", raw)) == {
            "kind": "DeleteOptions",
            "apiVersion": api_version,
            "gracePeriodSeconds": 0,
            "preconditions": {"resourceVersion": "42"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        }


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        vi(90, 7)
        + varint(91 << 3 | 1) + b"\x00" * 8
        + ld(92, "x")
        + varint(93 << 3 | 5) + b"\x00" * 4
        + varint(94 << 3 | 3) + vi(1, 1) + varint(94 << 3 | 4)
    )  # fmt: skip
    raw = ld(1, ld(1, "sa") + unknown) + unknown
    assert decode(envelope("v1", "ServiceAccount", raw)) == {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "sa", "creationTimestamp": None},
    }


def test_an_empty_type_meta_takes_the_kind_of_the_request() -> None:
    body = b"k8s\x00" + ld(1, b"") + ld(2, ld(1, ld(1, "x")))
    assert decode(body, api_version="v1", kind="Namespace")["metadata"]["name"] == "x"
    with pytest.raises(ProtobufError, match=r"^Object 'Kind' is missing in 'runtime.TypeMeta"):
        decode(body)


# ---- errors, worded as kube-apiserver words them ----------------------------------------------


def test_a_json_body_is_not_protobuf() -> None:
    body = b'{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"}}'
    with pytest.raises(ProtobufError) as caught:
        decode(body)
    assert caught.value.message("Secret", body) == (
        "the object provided is unrecognized (must be of type Secret): provided data does "
        "not appear to be a protobuf message, expected prefix [107 56 115 0] "
        '({"kind":"Secret","apiVersion": ...)'
    )


@pytest.mark.parametrize(("body", "problem"), [(b"", "empty data"), (b"k8s\x00", "empty body")])
def test_empty_bodies(body: bytes, problem: str) -> None:
    with pytest.raises(ProtobufError, match=f"^{problem}$"):
        decode(body)


def test_a_truncated_envelope() -> None:
    body = recorded("namespace")[:-3]
    with pytest.raises(ProtobufError) as caught:
        decode(body)
    assert caught.value.message("Namespace", body) == (
        "the object provided is unrecognized (must be of type Namespace): unexpected EOF "
        f"({body[:30].hex()} ...)"
    )


def test_a_broken_object_names_the_envelopes_kind() -> None:
    body = envelope("v1", "Secret", ld(1, b"\x0a\x05ab"))
    with pytest.raises(ProtobufError) as caught:
        decode(body)
    assert caught.value.message("Secret", body) == (
        'Secret in version "v1" cannot be handled as a Secret: unexpected EOF'
    )


def test_a_kind_without_a_description() -> None:
    body = envelope("v1", "Pod", ld(1, ld(1, "p")))
    assert not supports("v1", "Pod")
    with pytest.raises(ProtobufError) as caught:
        decode(body)
    assert caught.value.message("Namespace", body) == (
        'Pod in version "v1" cannot be handled as a Namespace: no kind "Pod" is registered '
        'for version "v1" in scheme "pkg/api/legacyscheme/scheme.go:30"'
    )


def test_a_wrong_wire_type() -> None:
    with pytest.raises(ProtobufError, match=r"^proto: wrong wireType = 0 for field Name$"):
        decode(envelope("v1", "Namespace", ld(1, vi(1, 3))))


def test_an_undescribed_pod_field_is_refused_not_dropped() -> None:
    pod_spec = ld(2, ld(1, "c")) + ld(1, ld(1, "data"))  # a container, then a volume
    template = ld(2, pod_spec)
    raw = ld(2, ld(3, template))
    with pytest.raises(ProtobufError, match="field volumes of PodSpec is not supported"):
        decode(envelope("apps/v1", "Deployment", raw))


def test_integer_overflow() -> None:
    with pytest.raises(ProtobufError, match=r"^proto: integer overflow$"):
        decode(envelope("v1", "Namespace", ld(1, b"\x38" + b"\xff" * 10 + b"\x01")))
