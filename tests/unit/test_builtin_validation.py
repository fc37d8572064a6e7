"""Built-in kinds are refused with the field paths, reasons and words of a 1.32
kube-apiserver; each test names the Kubernetes function whose behaviour it pins."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from fluxwatch.notify.event import EventFactory, InvolvedObject
from fluxwatch.notify.providers.kubernetes_event import core_event
from fluxwatch.sim.fielderrors import invalid_message
from fluxwatch.sim.validation import (
    default,
    event_to_events_v1,
    events_v1_to_core,
    name_is_dns_subdomain,
    prepare_namespace_create,
    validate,
    validate_object_meta,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def messages(res_key: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in validate(res_key, obj, old)]


def secret(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "apps"},
        "type": "Opaque",
        "data": {"token": b64("s3cret")},
    }
    obj.update(extra)
    return obj


def stored(obj: dict[str, Any], rv: str = "7") -> dict[str, Any]:
    """``obj`` as the store holds it: with the server-set metadata an update carries."""
    out = copy.deepcopy(obj)
    out["metadata"].update(
        {"uid": "1111-2222", "resourceVersion": rv, "creationTimestamp": "2026-03-01T12:00:00Z"}
    )
    return out


# --- ObjectMeta (k8s.io/apimachinery/pkg/api/validation, objectmeta.go) -------------


def test_a_valid_secret_passes() -> None:
    assert validate("secrets", secret()) == []


def test_name_or_generate_name_is_required() -> None:
    """ValidateObjectMetaAccessor: an empty name, after name generation."""
    obj = secret()
    del obj["metadata"]["name"]
    (err,) = validate("secrets", obj)
    assert (err.type, err.field) == ("FieldValueRequired", "metadata.name")
    assert str(err) == "metadata.name: Required value: name or generateName is required"


def test_most_names_are_dns_subdomains() -> None:
    """NameIsDNSSubdomain for Secrets."""
    obj = secret()
    obj["metadata"]["name"] = "Bad_Name"
    assert messages("secrets", obj) == [
        f'metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'
    ]


def test_a_namespace_name_is_a_dns_label() -> None:
    """ValidateNamespaceName = NameIsDNSLabel: a dot is named for what it is."""
    obj = {"metadata": {"name": "team.a"}, "spec": {"finalizers": ["kubernetes"]}}
    assert messages("namespaces", obj) == [
        'metadata.name: Invalid value: "team.a": must not contain dots'
    ]


def test_rbac_names_are_path_segments() -> None:
    """rbac minimalNameRequirements = path.IsValidPathSegmentName."""
    role = {"metadata": {"name": "system:controller:fluxwatch"}, "rules": []}
    assert validate("clusterroles.rbac.authorization.k8s.io", role) == []
    role["metadata"]["name"] = "a/b%c"
    assert messages("clusterroles.rbac.authorization.k8s.io", role) == [
        "metadata.name: Invalid value: \"a/b%c\": may not contain '/'",
        "metadata.name: Invalid value: \"a/b%c\": may not contain '%'",
    ]


def test_generate_name_may_end_in_a_dash() -> None:
    """maskTrailingDash: the suffix the server appends makes 'web-' a fine prefix."""
    obj = secret()
    obj["metadata"] = {"generateName": "web-", "name": "web-x7k2p", "namespace": "apps"}
    assert validate("secrets", obj) == []
    obj["metadata"]["generateName"] = "Web-"
    (err,) = validate("secrets", obj)
    assert err.field == "metadata.generateName"


def test_label_keys_and_values() -> None:
    """v1validation.ValidateLabels: each bad key and value at metadata.labels."""
    obj = secret()
    obj["metadata"]["labels"] = {"bad key": "ok", "app": "x" * 64}
    assert messages("secrets", obj) == [
        f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 characters',
        f'metadata.labels: Invalid value: "bad key": {QNAME_MSG}',
    ]


def test_annotations_are_capped_at_256_kib() -> None:
    """ValidateAnnotations + field.TooLong as worded by apimachinery 0.32."""
    obj = secret()
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    (err,) = validate("secrets", obj)
    assert err.type == "FieldValueTooLong"
    assert str(err) == "metadata.annotations: Too long: may not be more than 262144 bytes"


def test_finalizers_without_a_domain_must_be_standard_on_builtin_kinds() -> None:
    """core ValidateObjectMeta adds validateKubeFinalizerName; Leases use
    apimachinery's ValidateObjectMeta, which does not."""
    obj = secret()
    obj["metadata"]["finalizers"] = ["example.com/cleanup", "orphan", "cleanup"]
    assert messages("secrets", obj) == [
        'metadata.finalizers[2]: Invalid value: "cleanup": '
        "name is neither a standard finalizer name nor is it fully qualified"
    ]
    lease = {"metadata": {"name": "l", "namespace": "apps", "finalizers": ["cleanup"]}}
    assert validate("leases.coordination.k8s.io", lease) == []


def test_orphan_and_foreground_deletion_exclude_each_other() -> None:
    """ValidateFinalizers."""
    obj = secret()
    obj["metadata"]["finalizers"] = ["orphan", "foregroundDeletion"]
    assert messages("secrets", obj) == [
        'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
        "finalizer orphan and foregroundDeletion cannot be both set"
    ]


def test_owner_references_need_identity_and_one_controller() -> None:
    """validateOwnerReference and ValidateOwnerReferences."""
    obj = secret()
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "a",
            "uid": "u1",
            "controller": True,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "b",
            "uid": "u2",
            "controller": True,
        },
        {"apiVersion": "", "kind": "Thing", "name": "", "uid": ""},
    ]
    errs = validate("secrets", obj)
    assert [(e.field, e.detail) for e in errs] == [
        (
            "metadata.ownerReferences",
            'Only one reference can have Controller set to true. Found "true" in references '
            "for Deployment/a and Deployment/b",
        ),
        ("metadata.ownerReferences.apiVersion", "version must not be empty"),
        ("metadata.ownerReferences.name", "name must not be empty"),
        ("metadata.ownerReferences.uid", "uid must not be empty"),
    ]


def test_managed_fields_operation() -> None:
    """v1validation.ValidateManagedFields."""
    obj = secret()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Patch"}]
    assert messages("secrets", obj) == [
        'metadata.managedFields[0].operation: Invalid value: "Patch": must be `Apply` or `Update`'
    ]


def test_identity_fields_never_change_on_update() -> None:
    """ValidateObjectMetaAccessorUpdate: ValidateImmutableField on name, uid, ..."""
    old = stored(secret())
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "3333"
    new["metadata"]["creationTimestamp"] = "2026-03-02T00:00:00Z"
    assert messages("secrets", new, old) == [
        'metadata.uid: Invalid value: "3333": field is immutable',
        "metadata.creationTimestamp: Invalid value: 2026-03-02 00:00:00 +0000 UTC: "
        "field is immutable",
    ]


def test_an_update_carries_a_resource_version() -> None:
    old = stored(secret())
    new = copy.deepcopy(old)
    del new["metadata"]["resourceVersion"]
    assert messages("secrets", new, old) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update'
    ]


def test_no_new_finalizers_while_deleting() -> None:
    """ValidateNoNewFinalizers."""
    old = stored(secret())
    old["metadata"]["deletionTimestamp"] = "2026-03-01T13:00:00Z"
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["example.com/late"]
    (err,) = validate("secrets", new, old)
    assert err.type == "FieldValueForbidden"
    assert str(err) == (
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
        'being deleted, found new finalizers []string{"example.com/late"}'
    )


def test_custom_resources_get_the_object_meta_rules() -> None:
    """The CR strategy runs ValidateObjectMetaAccessor with NameIsDNSSubdomain."""
    hr = {"metadata": {"name": "Podinfo", "namespace": "apps", "finalizers": ["x"]}}
    errs = validate_object_meta(hr, namespaced=True, name_rule=name_is_dns_subdomain)
    assert [e.field for e in errs] == ["metadata.name"]


# --- Secret (ValidateSecret, ValidateSecretUpdate) ---------------------------------


def test_secret_data_keys() -> None:
    obj = secret(data={"a b": b64("x"), "..x": b64("y")})
    assert messages("secrets", obj) == [
        "data[..x]: Invalid value: \"..x\": must not start with '..'",
        'data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric '
        "characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name', regex "
        "used for validation is '[-._a-zA-Z0-9]+')",
    ]


def test_secret_data_is_capped_at_1_mib_decoded() -> None:
    obj = secret(data={"blob": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()})
    assert messages("secrets", obj) == ["data: Too long: may not be more than 1048576 bytes"]
    obj = secret(data={"blob": base64.b64encode(b"x" * (1024 * 1024)).decode()})
    assert validate("secrets", obj) == []


def test_tls_secrets_need_cert_and_key() -> None:
    obj = secret(type="kubernetes.io/tls", data={"tls.crt": b64("c")})
    assert messages("secrets", obj) == ["data[tls.key]: Required value"]


def test_dockerconfigjson_must_be_json() -> None:
    """The detail is encoding/json's error; the value is never shown."""
    obj = secret(type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": b64("{nope")})
    assert messages("secrets", obj) == [
        'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
        "invalid character 'n' looking for beginning of object key string"
    ]
    obj["data"] = {".dockerconfigjson": b64("[1]")}
    assert messages("secrets", obj) == [
        'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": '
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    ]
    obj["data"] = {".dockerconfigjson": b64('{"auths": {}}')}
    assert validate("secrets", obj) == []
    del obj["data"]
    assert messages("secrets", obj) == ["data[.dockerconfigjson]: Required value"]


def test_basic_auth_needs_a_username_or_password() -> None:
    """The real path carries a literal %s (field.NewPath("data[%s]").Key(...))."""
    obj = secret(type="kubernetes.io/basic-auth", data={})
    assert messages("secrets", obj) == [
        "data[%s][username]: Required value",
        "data[%s][password]: Required value",
    ]
    obj["data"] = {"password": ""}
    assert validate("secrets", obj) == []


def test_ssh_auth_and_service_account_token_secrets() -> None:
    assert messages("secrets", secret(type="kubernetes.io/ssh-auth", data={})) == [
        "data[%s][ssh-privatekey]: Required value"
    ]
    token = secret(type="kubernetes.io/service-account-token", data={})
    assert messages("secrets", token) == [
        "metadata.annotations[kubernetes.io/service-account.name]: Required value"
    ]


def test_a_secret_keeps_its_type_and_immutable_data() -> None:
    old = stored(secret(immutable=True))
    new = copy.deepcopy(old)
    new["type"] = "kubernetes.io/tls"
    new["data"] = {"tls.crt": b64("c"), "tls.key": b64("k")}
    new["immutable"] = False
    assert messages("secrets", new, old) == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable',
        "immutable: Forbidden: field is immutable when `immutable` is set",
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    same = copy.deepcopy(old)
    same["metadata"]["labels"] = {"touched": "yes"}
    assert validate("secrets", same, old) == []


# --- ConfigMap (ValidateConfigMap, ValidateConfigMapUpdate) ------------------------


def configmap(**extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "settings", "namespace": "apps"}}
    obj.update(extra)
    return obj


def test_configmap_keys_may_not_repeat_across_data_and_binary_data() -> None:
    obj = configmap(data={"k": "v"}, binaryData={"k": b64("v")})
    assert messages("configmaps", obj) == [
        'data[k]: Invalid value: "k": duplicate of key present in binaryData'
    ]


def test_configmap_size_is_reported_on_the_whole_object() -> None:
    """field.TooLong(field.NewPath(""), ...): no field named."""
    (err,) = validate("configmaps", configmap(data={"big": "x" * (1024 * 1024 + 1)}))
    assert (err.type, err.field) == ("FieldValueTooLong", "")
    assert err.body() == "Too long: may not be more than 1048576 bytes"


def test_an_immutable_configmap_keeps_data_and_binary_data() -> None:
    old = stored(configmap(immutable=True, data={"k": "v"}))
    new = copy.deepcopy(old)
    new["binaryData"] = {"b": b64("x")}
    assert messages("configmaps", new, old) == [
        "binaryData: Forbidden: field is immutable when `immutable` is set"
    ]


# --- Namespace, ServiceAccount -----------------------------------------------------


def test_namespace_spec_finalizers_are_finalizer_names() -> None:
    """ValidateNamespace: validateFinalizerName at spec.finalizers (no index)."""
    obj = {"metadata": {"name": "apps"}, "spec": {"finalizers": ["kubernetes", "mine"]}}
    assert messages("namespaces", obj) == [
        'spec.finalizers: Invalid value: "mine": '
        "name is neither a standard finalizer name nor is it fully qualified"
    ]


def test_namespace_is_cluster_scoped() -> None:
    obj = {"metadata": {"name": "apps", "namespace": "default"}}
    assert messages("namespaces", obj) == [
        "metadata.namespace: Forbidden: not allowed on this type"
    ]


def test_a_namespace_keeps_its_name() -> None:
    old = stored({"metadata": {"name": "apps"}, "spec": {"finalizers": ["kubernetes"]}})
    new = copy.deepcopy(old)
    new["metadata"]["name"] = "apps2"
    assert messages("namespaces", new, old) == [
        'metadata.name: Invalid value: "apps2": field is immutable'
    ]


def test_service_account_needs_a_namespace() -> None:
    assert messages("serviceaccounts", {"metadata": {"name": "fluxwatch"}}) == [
        "metadata.namespace: Required value"
    ]


# --- Lease (pkg/apis/coordination/validation ValidateLeaseSpec) ---------------------


def lease(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "fluxwatch", "namespace": "flux-system"}, "spec": spec}


def test_a_lease_as_fluxwatch_writes_it_passes() -> None:
    obj = lease(
        holderIdentity="fluxwatch-7d9f",
        leaseDurationSeconds=15,
        acquireTime="2026-03-01T12:00:00.000000Z",
        renewTime="2026-03-01T12:00:05.000000Z",
        leaseTransitions=0,
    )
    assert validate("leases.coordination.k8s.io", obj) == []


def test_lease_numbers_have_floors() -> None:
    obj = lease(leaseDurationSeconds=0, leaseTransitions=-1)
    assert messages("leases.coordination.k8s.io", obj) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]


def test_lease_strategy_and_preferred_holder() -> None:
    """ValidateCoordinatedLeaseStrategy (its path repeats "strategy")."""
    assert messages("leases.coordination.k8s.io", lease(preferredHolder="a")) == [
        "spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"
    ]
    assert messages("leases.coordination.k8s.io", lease(strategy="Newest")) == [
        'spec.strategy.strategy: Unsupported value: "Newest": '
        'supported values: "OldestEmulationVersion"'
    ]
    ok = lease(strategy="example.com/mine", preferredHolder="a")
    assert validate("leases.coordination.k8s.io", ok) == []


# --- Events (pkg/apis/core/validation/events.go) ----------------------------------

T0 = datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)
HR = InvolvedObject.helmrelease("apps", "podinfo", uid="5e6f-uid", resource_version="4711")


def provider_event() -> dict[str, Any]:
    """The body fluxwatch's kubernetes-event provider sent before it dropped eventTime:
    eventTime set, and no action (a real server answered 422)."""
    event = EventFactory("fluxwatch-7d9f-abcde", now=lambda: T0).stuck_detected(
        HR, age=432, threshold=300, revision="6.5.0"
    )
    body = core_event(event, name_ns=1)
    body["eventTime"] = "2026-03-01T12:00:05.000000Z"
    body.pop("action", None)
    return body


def test_the_kubernetes_event_provider_body_passes() -> None:
    """What the provider sends now: the legacy recorder's shape, without eventTime."""
    event = EventFactory("fluxwatch-7d9f-abcde", now=lambda: T0).stuck_detected(
        HR, age=432, threshold=300, revision="6.5.0"
    )
    body = core_event(event, name_ns=1)
    assert "eventTime" not in body
    assert validate("events", body) == []


def test_the_kubernetes_event_provider_body_is_refused_for_lack_of_action() -> None:
    """legacyValidateEvent: with eventTime set, action is required."""
    body = provider_event()
    assert body["eventTime"] and "action" not in body
    errs = validate("events", body)
    assert [(e.type, e.field) for e in errs] == [("FieldValueRequired", "action")]
    assert invalid_message("Event", "", body["metadata"]["name"], errs) == (
        f'Event "{body["metadata"]["name"]}" is invalid: action: Required value'
    )


def test_a_correct_core_event_with_event_time_passes() -> None:
    body = provider_event()
    body["action"] = "StuckDetected"
    assert validate("events", body) == []


def test_event_time_events_need_reporting_fields() -> None:
    """legacyValidateEvent, the eventTime branch: reportingController is the internal
    name of core/v1's reportingComponent."""
    body = {
        "metadata": {"name": "e", "namespace": "apps"},
        "involvedObject": {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo"},
        "eventTime": "2026-03-01T12:00:05.000000Z",
        "reason": "x" * 129,
        "message": "m" * 1025,
    }
    assert messages("events", body) == [
        "reportingController: Required value",
        'reportingController: Invalid value: "": name part must be non-empty',
        f'reportingController: Invalid value: "": {QNAME_MSG}',
        "reportingInstance: Required value",
        "action: Required value",
        'reason: Invalid value: "": can have at most 128 characters',
        'message: Invalid value: "": can have at most 1024 characters',
    ]


def test_an_old_style_event_lives_in_its_objects_namespace() -> None:
    body = {
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "apps", "name": "p"},
        "reason": "Started",
    }
    assert messages("events", body) == [
        'involvedObject.namespace: Invalid value: "apps": does not match event.namespace'
    ]
    body["metadata"]["namespace"] = "apps"
    assert validate("events", body) == []


def events_v1(**extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "podinfo.1", "namespace": "apps"},
        "eventTime": "2026-03-01T12:00:05.123456Z",
        "reportingController": "fluxwatch",
        "reportingInstance": "fluxwatch-7d9f",
        "action": "StuckDetected",
        "reason": "StuckDetected",
        "regarding": {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo"},
        "note": "stuck",
        "type": "Warning",
    }
    ev.update(extra)
    return ev


def test_a_correct_events_v1_event_passes() -> None:
    assert validate("events.events.k8s.io", events_v1()) == []


def test_events_v1_is_strict_and_speaks_in_core_field_names() -> None:
    """ValidateEventCreate for events.k8s.io/v1: eventTime required, deprecated fields
    unset, type Normal|Warning; the note is checked as "message"."""
    ev = events_v1(type="Info", note="n" * 1025, deprecatedCount=3)
    assert messages("events.events.k8s.io", ev) == [
        'message: Invalid value: "": can have at most 1024 characters',
        'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset',
    ]
    # Without eventTime the legacy rules see an old-style Event; the strict ones still
    # want the time.
    del ev["eventTime"]
    assert messages("events.events.k8s.io", ev) == [
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset',
    ]


def test_events_v1_regarding_is_checked_as_involved_object() -> None:
    ev = events_v1(regarding={"kind": "Node", "name": "n1"})
    assert messages("events.events.k8s.io", ev) == [
        'involvedObject.namespace: Invalid value: "": does not match event.namespace'
    ]


def test_events_v1_series_needs_two_and_a_time() -> None:
    """validateV1EventSeries."""
    ev = events_v1(series={"count": 1})
    assert messages("events.events.k8s.io", ev) == [
        'series.count: Invalid value: "": should be at least 2',
        "series.lastObservedTime: Required value",
    ]


def test_events_v1_update_keeps_the_note() -> None:
    """ValidateEventUpdate: through events.k8s.io/v1 the message is immutable."""
    old = stored(events_v1())
    new = copy.deepcopy(old)
    new["note"] = "changed"
    assert messages("events.events.k8s.io", new, old) == [
        'message: Invalid value: "changed": field is immutable'
    ]
    series = copy.deepcopy(old)
    series["series"] = {"count": 2, "lastObservedTime": "2026-03-01T12:01:00.000000Z"}
    assert validate("events.events.k8s.io", series, old) == []


def test_events_convert_between_apis_as_kubernetes_does() -> None:
    """Convert_v1_Event_To_core_Event / Convert_core_Event_To_v1_Event."""
    core = events_v1_to_core(events_v1(deprecatedSource={"component": "fluxwatch"}))
    assert core == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "podinfo.1", "namespace": "apps"},
        "involvedObject": {"kind": "HelmRelease", "namespace": "apps", "name": "podinfo"},
        "message": "stuck",
        "source": {"component": "fluxwatch"},
        "reportingComponent": "fluxwatch",
        "reason": "StuckDetected",
        "type": "Warning",
        "eventTime": "2026-03-01T12:00:05.123456Z",
        "action": "StuckDetected",
        "reportingInstance": "fluxwatch-7d9f",
        "firstTimestamp": None,
        "lastTimestamp": None,
    }
    back = event_to_events_v1(core)
    assert back == events_v1(
        deprecatedSource={"component": "fluxwatch"},
        deprecatedFirstTimestamp=None,
        deprecatedLastTimestamp=None,
    )
    legacy = event_to_events_v1(provider_event())
    assert legacy["deprecatedCount"] == 1
    assert legacy["regarding"]["name"] == "podinfo"
    assert legacy["deprecatedSource"] == {"component": "fluxwatch"}


# --- RBAC (pkg/apis/rbac/validation) -----------------------------------------------


def test_role_rules() -> None:
    """validatePolicyRule."""
    role = {
        "metadata": {"name": "reader", "namespace": "apps"},
        "rules": [
            {"resources": ["secrets"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ],
    }
    assert messages("roles.rbac.authorization.k8s.io", role) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        'rules[1].nonResourceURLs: Invalid value: []string{"/healthz"}: '
        "namespaced rules cannot apply to non-resource URLs",
    ]
    cluster = copy.deepcopy(role)
    del cluster["metadata"]["namespace"]
    cluster["rules"] = [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    assert validate("clusterroles.rbac.authorization.k8s.io", cluster) == []


def binding() -> dict[str, Any]:
    return {
        "metadata": {"name": "fluxwatch", "namespace": "apps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "fluxwatch", "namespace": "apps"}],
    }


def test_binding_role_ref_and_subjects() -> None:
    """ValidateRoleBinding / validateRoleBindingSubject."""
    assert validate("rolebindings.rbac.authorization.k8s.io", binding()) == []
    bad = binding()
    bad["roleRef"]["kind"] = "Secret"
    bad["subjects"] = [{"kind": "User", "name": "jane"}, {"kind": "Robot", "name": "r"}]
    assert messages("rolebindings.rbac.authorization.k8s.io", bad) == [
        'roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole"',
        'subjects[0].apiGroup: Unsupported value: "": supported values: '
        '"rbac.authorization.k8s.io"',
        'subjects[1].kind: Unsupported value: "Robot": supported values: '
        '"ServiceAccount", "User", "Group"',
    ]


def test_a_binding_keeps_its_role_ref() -> None:
    """ValidateRoleBindingUpdate: cannot change roleRef."""
    old = stored(binding())
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "admin"
    assert messages("rolebindings.rbac.authorization.k8s.io", new, old) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
        'Kind:"Role", Name:"admin"}: cannot change roleRef'
    ]


# --- Service, Deployment, PDB, NetworkPolicy ---------------------------------------


def test_service_names_are_dns_1035_labels_and_ports_are_checked() -> None:
    """ValidateServiceName = NameIsDNS1035Label; validateServicePort."""
    svc: dict[str, Any] = {
        "metadata": {"name": "1web", "namespace": "apps"},
        "spec": {"ports": [{"port": 80, "protocol": "HTTP"}], "type": "Cluster"},
    }
    default("services", svc)
    assert [e.field for e in validate("services", svc)] == [
        "metadata.name",
        "spec.ports[0].protocol",
        "spec.type",
    ]
    svc["metadata"]["name"] = "web"
    svc["spec"] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    default("services", svc)
    assert validate("services", svc) == []
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert svc["spec"]["sessionAffinity"] == "None"
    assert svc["spec"]["type"] == "ClusterIP"


def deployment() -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "helm-controller", "namespace": "flux-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "helm-controller"}},
            "template": {
                "metadata": {"labels": {"app": "helm-controller"}},
                "spec": {
                    "containers": [
                        {"name": "manager", "image": "ghcr.io/fluxcd/helm-controller:v1.1.0"}
                    ]
                },
            },
        },
    }
    default("deployments.apps", obj)
    return obj


def test_deployment_defaults() -> None:
    """SetDefaults_Deployment and the pod template defaults."""
    spec = deployment()["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always",
        "ClusterFirst",
        "default-scheduler",
    )
    assert pod["securityContext"] == {}
    (ctr,) = pod["containers"]
    assert ctr["imagePullPolicy"] == "IfNotPresent"
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert validate("deployments.apps", deployment()) == []


def test_deployment_template_must_match_selector() -> None:
    """ValidatePodTemplateSpecForReplicaSet."""
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert messages("deployments.apps", obj) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`"
    ]
    del obj["spec"]["selector"]
    assert [e.field for e in validate("deployments.apps", obj)] == [
        "spec.selector",
        "spec.template.metadata.labels",
    ]


def test_deployment_containers_and_numbers() -> None:
    obj = deployment()
    obj["spec"]["replicas"] = -1
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert messages("deployments.apps", obj) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.template.spec.containers[0].image: Required value",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "
        'intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0',
    ]


def test_a_deployment_keeps_its_selector() -> None:
    """ValidateImmutableField on spec.selector for apps/v1."""
    old = stored(deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "x"}}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    assert messages("deployments.apps", new, old) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    ]


def test_pdb_min_available_xor_max_unavailable() -> None:
    pdb = {
        "metadata": {"name": "hc", "namespace": "flux-system"},
        "spec": {"minAvailable": 1, "maxUnavailable": "150%", "selector": {"matchLabels": {}}},
    }
    errs = validate("poddisruptionbudgets.policy", pdb)
    assert [(e.field, e.detail) for e in errs] == [
        ("spec", "minAvailable and maxUnavailable cannot be both set"),
        ("spec.maxUnavailable", "must not be greater than 100%"),
    ]


def test_network_policy_types_and_peers() -> None:
    netpol: dict[str, Any] = {
        "metadata": {"name": "deny", "namespace": "apps"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{}]}], "policyTypes": ["Inbound"]},
    }
    assert messages("networkpolicies.networking.k8s.io", netpol) == [
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        'spec.policyTypes[0]: Unsupported value: "Inbound": supported values: "Ingress", "Egress"',
    ]
    ok: dict[str, Any] = {
        "metadata": {"name": "deny", "namespace": "apps"},
        "spec": {"podSelector": {}},
    }
    default("networkpolicies.networking.k8s.io", ok)
    assert ok["spec"]["policyTypes"] == ["Ingress"]
    assert validate("networkpolicies.networking.k8s.io", ok) == []


# --- defaults ----------------------------------------------------------------------


def test_secret_and_namespace_defaults() -> None:
    obj: dict[str, Any] = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    default("secrets", obj)
    assert obj == {"metadata": {"name": "s"}, "data": {"k": b64("v")}, "type": "Opaque"}
    ns: dict[str, Any] = {"metadata": {"name": "apps"}}
    default("namespaces", ns)
    prepare_namespace_create(ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "apps"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("localhost:5000/nginx", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    obj = deployment()
    ctr = obj["spec"]["template"]["spec"]["containers"][0]
    del ctr["imagePullPolicy"]
    ctr["image"] = image
    default("deployments.apps", obj)
    assert ctr["imagePullPolicy"] == policy
