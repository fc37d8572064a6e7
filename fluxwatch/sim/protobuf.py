"""Kubernetes protobuf request bodies, decoded into the dict their JSON form would be.

kubectl's typed commands (``create namespace|secret|configmap|serviceaccount|role|
rolebinding|clusterrole|clusterrolebinding|deployment|service|pdb``, ``create token``,
``auth can-i``, ``auth whoami``) send ``application/vnd.kubernetes.protobuf``: the
magic ``k8s\\x00`` and a ``runtime.Unknown`` envelope whose ``raw`` bytes are the
object's message. The emulator stores JSON, so a body is read here once into exactly
what kubectl would have sent as JSON (Go's ``encoding/json`` rules: ``omitempty``
drops zero scalars and empty collections, structs are always written, pointers are
written when set, ``metav1.Time`` is RFC 3339 or null, ``[]byte`` is base64), and the
rest of the server never knows the difference.

The messages are described by ``MESSAGES``, a table of field numbers taken from
Kubernetes' ``generated.proto`` files (k8s.io/api and k8s.io/apimachinery v0.32) with
the JSON presence rule of each field from its Go ``types.go``. Unknown field numbers
are skipped, as the generated Go decoders skip them; a field the table names but does
not describe (a Pod's volumes, probes, affinity, ...) is refused rather than silently
lost. Errors carry the words of the generated decoders, and ``ProtobufError.message``
wraps them as kube-apiserver's create and update handlers do. (kubectl delete sends
its DeleteOptions as JSON; client-go's typed Delete sends them as protobuf.)
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# JSON presence of a field, from its Go type and json tag.
OMIT = "omit"  # omitempty, not a pointer: left out when zero or empty
PTR = "ptr"  # omitempty pointer: written whenever it was set, zero or not
NULL = "null"  # no omitempty, nil-able (pointer, slice, map): null when unset
ALWAYS = "always"  # no omitempty scalar, or any struct: written, zero when unset

# Value types besides message names: how the wire value becomes JSON.
STRING = "string"
BOOL = "bool"
INT = "int"  # int32 and int64 alike: varints, negative ones in ten bytes
BYTES = "bytes"  # []byte: base64 in JSON
TIME = "time"  # metav1.Time: {seconds, nanos} -> RFC 3339 in UTC, seconds precision
FIELDS_V1 = "fieldsV1"  # metav1.FieldsV1: raw JSON bytes, written as they are
INT_OR_STRING = "intstr"  # intstr.IntOrString: {type, intVal, strVal} -> int or string
QUANTITY = "quantity"  # resource.Quantity: {string} -> string
EXTRA_VALUE = "extra"  # authentication/v1.ExtraValue: {items} -> list of strings
UNDESCRIBED = "undescribed"  # a field this table does not describe: refused if present

_SCALARS = frozenset(
    {STRING, BOOL, INT, BYTES, TIME, FIELDS_V1, INT_OR_STRING, QUANTITY, EXTRA_VALUE}
)
_VARINT_TYPES = frozenset({BOOL, INT})

# Protobuf wire types.
_VARINT, _FIXED64, _LEN, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # the JSON name
    type: str  # a value type above, or a message name in MESSAGES
    mode: str = OMIT
    repeated: bool = False
    map: bool = False  # map<string, type>: repeated entries {key = 1, value = 2}


def _f(name: str, type_: str = STRING, mode: str = OMIT) -> Field:
    return Field(name, type_, mode)


def _list(name: str, type_: str = STRING, mode: str = OMIT) -> Field:
    return Field(name, type_, mode, repeated=True)


def _map(name: str, type_: str = STRING, mode: str = OMIT) -> Field:
    return Field(name, type_, mode, map=True)


def _object(*fields: tuple[int, Field]) -> dict[int, Field]:
    """A top-level kind: metadata = 1, then its own fields."""
    return {1: _f("metadata", "ObjectMeta", ALWAYS), **dict(fields)}


MESSAGES: dict[str, dict[int, Field]] = {
    # ---- k8s.io/apimachinery: runtime, meta/v1 --------------------------------------------
    "runtime.TypeMeta": {1: _f("apiVersion"), 2: _f("kind")},
    "ObjectMeta": {
        1: _f("name"),
        2: _f("generateName"),
        3: _f("namespace"),
        4: _f("selfLink"),
        5: _f("uid"),
        6: _f("resourceVersion"),
        7: _f("generation", INT),
        8: _f("creationTimestamp", TIME, ALWAYS),
        9: _f("deletionTimestamp", TIME, PTR),
        10: _f("deletionGracePeriodSeconds", INT, PTR),
        11: _map("labels"),
        12: _map("annotations"),
        13: _list("ownerReferences", "OwnerReference"),
        14: _list("finalizers"),
        17: _list("managedFields", "ManagedFieldsEntry"),
    },
    "OwnerReference": {
        5: _f("apiVersion", STRING, ALWAYS),
        1: _f("kind", STRING, ALWAYS),
        3: _f("name", STRING, ALWAYS),
        4: _f("uid", STRING, ALWAYS),
        6: _f("controller", BOOL, PTR),
        7: _f("blockOwnerDeletion", BOOL, PTR),
    },
    "ManagedFieldsEntry": {
        1: _f("manager"),
        2: _f("operation"),
        3: _f("apiVersion"),
        4: _f("time", TIME, PTR),
        6: _f("fieldsType"),
        7: _f("fieldsV1", FIELDS_V1, PTR),
        8: _f("subresource"),
    },
    "LabelSelector": {
        1: _map("matchLabels"),
        2: _list("matchExpressions", "LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {
        1: _f("key", STRING, ALWAYS),
        2: _f("operator", STRING, ALWAYS),
        3: _list("values"),
    },
    "FieldSelectorRequirement": {
        1: _f("key", STRING, ALWAYS),
        2: _f("operator", STRING, ALWAYS),
        3: _list("values"),
    },
    "DeleteOptions": {
        1: _f("gracePeriodSeconds", INT, PTR),
        2: _f("preconditions", "Preconditions", PTR),
        3: _f("orphanDependents", BOOL, PTR),
        4: _f("propagationPolicy", STRING, PTR),
        5: _list("dryRun"),
        6: _f("ignoreStoreReadErrorWithClusterBreakingPotential", BOOL, PTR),
    },
    "Preconditions": {1: _f("uid", STRING, PTR), 2: _f("resourceVersion", STRING, PTR)},
    # ---- core/v1 --------------------------------------------------------------------------
    "Namespace": _object(
        (2, _f("spec", "NamespaceSpec", ALWAYS)), (3, _f("status", "NamespaceStatus", ALWAYS))
    ),
    "NamespaceSpec": {1: _list("finalizers")},
    "NamespaceStatus": {1: _f("phase"), 2: _list("conditions", "NamespaceCondition")},
    "NamespaceCondition": {
        1: _f("type", STRING, ALWAYS),
        2: _f("status", STRING, ALWAYS),
        4: _f("lastTransitionTime", TIME, ALWAYS),
        5: _f("reason"),
        6: _f("message"),
    },
    "Secret": _object(
        (5, _f("immutable", BOOL, PTR)),
        (2, _map("data", BYTES)),
        (4, _map("stringData")),
        (3, _f("type")),
    ),
    "ConfigMap": _object(
        (4, _f("immutable", BOOL, PTR)), (2, _map("data")), (3, _map("binaryData", BYTES))
    ),
    "ServiceAccount": _object(
        (2, _list("secrets", "ObjectReference")),
        (3, _list("imagePullSecrets", "LocalObjectReference")),
        (4, _f("automountServiceAccountToken", BOOL, PTR)),
    ),
    "ObjectReference": {
        1: _f("kind"),
        2: _f("namespace"),
        3: _f("name"),
        4: _f("uid"),
        5: _f("apiVersion"),
        6: _f("resourceVersion"),
        7: _f("fieldPath"),
    },
    "LocalObjectReference": {1: _f("name")},
    "Service": _object(
        (2, _f("spec", "ServiceSpec", ALWAYS)), (3, _f("status", "ServiceStatus", ALWAYS))
    ),
    "ServiceSpec": {
        1: _list("ports", "ServicePort"),
        2: _map("selector"),
        3: _f("clusterIP"),
        18: _list("clusterIPs"),
        4: _f("type"),
        5: _list("externalIPs"),
        7: _f("sessionAffinity"),
        8: _f("loadBalancerIP"),
        9: _list("loadBalancerSourceRanges"),
        10: _f("externalName"),
        11: _f("externalTrafficPolicy"),
        12: _f("healthCheckNodePort", INT),
        13: _f("publishNotReadyAddresses", BOOL),
        14: _f("sessionAffinityConfig", "SessionAffinityConfig", PTR),
        19: _list("ipFamilies"),
        17: _f("ipFamilyPolicy", STRING, PTR),
        20: _f("allocateLoadBalancerNodePorts", BOOL, PTR),
        21: _f("loadBalancerClass", STRING, PTR),
        22: _f("internalTrafficPolicy", STRING, PTR),
        23: _f("trafficDistribution", STRING, PTR),
    },
    "ServicePort": {
        1: _f("name"),
        2: _f("protocol"),
        6: _f("appProtocol", STRING, PTR),
        3: _f("port", INT, ALWAYS),
        4: _f("targetPort", INT_OR_STRING, ALWAYS),
        5: _f("nodePort", INT),
    },
    "SessionAffinityConfig": {1: _f("clientIP", "ClientIPConfig", PTR)},
    "ClientIPConfig": {1: _f("timeoutSeconds", INT, PTR)},
    "ServiceStatus": {
        1: _f("loadBalancer", "LoadBalancerStatus", ALWAYS),
        2: _list("conditions", UNDESCRIBED),
    },
    "LoadBalancerStatus": {1: _list("ingress", UNDESCRIBED)},
    "PodTemplateSpec": {1: _f("metadata", "ObjectMeta", ALWAYS), 2: _f("spec", "PodSpec", ALWAYS)},
    # What kubectl create deployment writes, and the plain fields beside it; the deep
    # parts of a Pod (volumes, probes, affinity, security contexts) are not described.
    "PodSpec": {
        1: _list("volumes", UNDESCRIBED),
        20: _list("initContainers", "Container"),
        2: _list("containers", "Container", NULL),
        34: _list("ephemeralContainers", UNDESCRIBED),
        3: _f("restartPolicy"),
        4: _f("terminationGracePeriodSeconds", INT, PTR),
        5: _f("activeDeadlineSeconds", INT, PTR),
        6: _f("dnsPolicy"),
        7: _map("nodeSelector"),
        8: _f("serviceAccountName"),
        9: _f("serviceAccount"),
        21: _f("automountServiceAccountToken", BOOL, PTR),
        10: _f("nodeName"),
        11: _f("hostNetwork", BOOL),
        12: _f("hostPID", BOOL),
        13: _f("hostIPC", BOOL),
        27: _f("shareProcessNamespace", BOOL, PTR),
        14: _f("securityContext", UNDESCRIBED),
        15: _list("imagePullSecrets", "LocalObjectReference"),
        16: _f("hostname"),
        17: _f("subdomain"),
        18: _f("affinity", UNDESCRIBED),
        19: _f("schedulerName"),
        22: _list("tolerations", UNDESCRIBED),
        23: _list("hostAliases", UNDESCRIBED),
        24: _f("priorityClassName"),
        25: _f("priority", INT, PTR),
        26: _f("dnsConfig", UNDESCRIBED),
        28: _list("readinessGates", UNDESCRIBED),
        29: _f("runtimeClassName", STRING, PTR),
        30: _f("enableServiceLinks", BOOL, PTR),
        31: _f("preemptionPolicy", STRING, PTR),
        32: _map("overhead", QUANTITY),
        33: _list("topologySpreadConstraints", UNDESCRIBED),
        35: _f("setHostnameAsFQDN", BOOL, PTR),
        36: _f("os", UNDESCRIBED),
        37: _f("hostUsers", BOOL, PTR),
        38: _list("schedulingGates", UNDESCRIBED),
        39: _list("resourceClaims", UNDESCRIBED),
        40: _f("resources", "ResourceRequirements", PTR),
    },
    "Container": {
        1: _f("name", STRING, ALWAYS),
        2: _f("image"),
        3: _list("command"),
        4: _list("args"),
        5: _f("workingDir"),
        6: _list("ports", "ContainerPort"),
        19: _list("envFrom", UNDESCRIBED),
        7: _list("env", "EnvVar"),
        8: _f("resources", "ResourceRequirements", ALWAYS),
        23: _list("resizePolicy", UNDESCRIBED),
        24: _f("restartPolicy", STRING, PTR),
        9: _list("volumeMounts", "VolumeMount"),
        21: _list("volumeDevices", UNDESCRIBED),
        10: _f("livenessProbe", UNDESCRIBED),
        11: _f("readinessProbe", UNDESCRIBED),
        22: _f("startupProbe", UNDESCRIBED),
        12: _f("lifecycle", UNDESCRIBED),
        13: _f("terminationMessagePath"),
        20: _f("terminationMessagePolicy"),
        14: _f("imagePullPolicy"),
        15: _f("securityContext", UNDESCRIBED),
        16: _f("stdin", BOOL),
        17: _f("stdinOnce", BOOL),
        18: _f("tty", BOOL),
    },
    "ContainerPort": {
        1: _f("name"),
        2: _f("hostPort", INT),
        3: _f("containerPort", INT, ALWAYS),
        4: _f("protocol"),
        5: _f("hostIP"),
    },
    "EnvVar": {1: _f("name", STRING, ALWAYS), 2: _f("value"), 3: _f("valueFrom", UNDESCRIBED)},
    "ResourceRequirements": {
        1: _map("limits", QUANTITY),
        2: _map("requests", QUANTITY),
        3: _list("claims", "ResourceClaim"),
    },
    "ResourceClaim": {1: _f("name", STRING, ALWAYS), 2: _f("request")},
    "VolumeMount": {
        1: _f("name", STRING, ALWAYS),
        2: _f("readOnly", BOOL),
        7: _f("recursiveReadOnly", STRING, PTR),
        3: _f("mountPath", STRING, ALWAYS),
        4: _f("subPath"),
        5: _f("mountPropagation", STRING, PTR),
        6: _f("subPathExpr"),
    },
    # ---- apps/v1, policy/v1 ---------------------------------------------------------------
    "Deployment": _object(
        (2, _f("spec", "DeploymentSpec", ALWAYS)), (3, _f("status", "DeploymentStatus", ALWAYS))
    ),
    "DeploymentSpec": {
        1: _f("replicas", INT, PTR),
        2: _f("selector", "LabelSelector", NULL),
        3: _f("template", "PodTemplateSpec", ALWAYS),
        4: _f("strategy", "DeploymentStrategy", ALWAYS),
        5: _f("minReadySeconds", INT),
        6: _f("revisionHistoryLimit", INT, PTR),
        7: _f("paused", BOOL),
        9: _f("progressDeadlineSeconds", INT, PTR),
    },
    "DeploymentStrategy": {
        1: _f("type"),
        2: _f("rollingUpdate", "RollingUpdateDeployment", PTR),
    },
    "RollingUpdateDeployment": {
        1: _f("maxUnavailable", INT_OR_STRING, PTR),
        2: _f("maxSurge", INT_OR_STRING, PTR),
    },
    "DeploymentStatus": {
        1: _f("observedGeneration", INT),
        2: _f("replicas", INT),
        3: _f("updatedReplicas", INT),
        7: _f("readyReplicas", INT),
        4: _f("availableReplicas", INT),
        5: _f("unavailableReplicas", INT),
        6: _list("conditions", UNDESCRIBED),
        8: _f("collisionCount", INT, PTR),
    },
    "PodDisruptionBudget": _object(
        (2, _f("spec", "PodDisruptionBudgetSpec", ALWAYS)),
        (3, _f("status", "PodDisruptionBudgetStatus", ALWAYS)),
    ),
    "PodDisruptionBudgetSpec": {
        1: _f("minAvailable", INT_OR_STRING, PTR),
        2: _f("selector", "LabelSelector", PTR),
        3: _f("maxUnavailable", INT_OR_STRING, PTR),
        4: _f("unhealthyPodEvictionPolicy", STRING, PTR),
    },
    "PodDisruptionBudgetStatus": {
        1: _f("observedGeneration", INT),
        2: _map("disruptedPods", TIME),
        3: _f("disruptionsAllowed", INT, ALWAYS),
        4: _f("currentHealthy", INT, ALWAYS),
        5: _f("desiredHealthy", INT, ALWAYS),
        6: _f("expectedPods", INT, ALWAYS),
        7: _list("conditions", UNDESCRIBED),
    },
    # ---- authentication/v1 ----------------------------------------------------------------
    "TokenRequest": _object(
        (2, _f("spec", "TokenRequestSpec", ALWAYS)),
        (3, _f("status", "TokenRequestStatus", ALWAYS)),
    ),
    "TokenRequestSpec": {
        1: _list("audiences", STRING, NULL),
        4: _f("expirationSeconds", INT, NULL),
        3: _f("boundObjectRef", "BoundObjectReference", NULL),
    },
    # The proto calls field 4 "uID"; the JSON name is "uid".
    "BoundObjectReference": {1: _f("kind"), 2: _f("apiVersion"), 3: _f("name"), 4: _f("uid")},
    "TokenRequestStatus": {
        1: _f("token", STRING, ALWAYS),
        2: _f("expirationTimestamp", TIME, ALWAYS),
    },
    "SelfSubjectReview": _object((2, _f("status", "SelfSubjectReviewStatus", ALWAYS))),
    "SelfSubjectReviewStatus": {1: _f("userInfo", "UserInfo", ALWAYS)},
    "UserInfo": {
        1: _f("username"),
        2: _f("uid"),
        3: _list("groups"),
        4: _map("extra", EXTRA_VALUE),
    },
    # ---- authorization/v1 -----------------------------------------------------------------
    "SelfSubjectAccessReview": _object(
        (2, _f("spec", "SelfSubjectAccessReviewSpec", ALWAYS)),
        (3, _f("status", "SubjectAccessReviewStatus", ALWAYS)),
    ),
    # `kubectl auth can-i --list` (k8s.io/api authorization/v1 generated.proto).
    "SelfSubjectRulesReview": _object(
        (2, _f("spec", "SelfSubjectRulesReviewSpec", ALWAYS)),
        (3, _f("status", "SubjectRulesReviewStatus", ALWAYS)),
    ),
    "SelfSubjectRulesReviewSpec": {1: _f("namespace")},
    "SubjectRulesReviewStatus": {
        1: _list("resourceRules", "ResourceRule", NULL),
        2: _list("nonResourceRules", "NonResourceRule", NULL),
        3: _f("incomplete", BOOL, ALWAYS),
        4: _f("evaluationError"),
    },
    "ResourceRule": {
        1: _list("verbs", STRING, NULL),
        2: _list("apiGroups"),
        3: _list("resources"),
        4: _list("resourceNames"),
    },
    "NonResourceRule": {1: _list("verbs", STRING, NULL), 2: _list("nonResourceURLs")},
    "SelfSubjectAccessReviewSpec": {
        1: _f("resourceAttributes", "ResourceAttributes", PTR),
        2: _f("nonResourceAttributes", "NonResourceAttributes", PTR),
    },
    "ResourceAttributes": {
        1: _f("namespace"),
        2: _f("verb"),
        3: _f("group"),
        4: _f("version"),
        5: _f("resource"),
        6: _f("subresource"),
        7: _f("name"),
        8: _f("fieldSelector", "FieldSelectorAttributes", PTR),
        9: _f("labelSelector", "LabelSelectorAttributes", PTR),
    },
    "NonResourceAttributes": {1: _f("path"), 2: _f("verb")},
    "FieldSelectorAttributes": {
        1: _f("rawSelector"),
        2: _list("requirements", "FieldSelectorRequirement"),
    },
    "LabelSelectorAttributes": {
        1: _f("rawSelector"),
        2: _list("requirements", "LabelSelectorRequirement"),
    },
    "SubjectAccessReviewStatus": {
        1: _f("allowed", BOOL, ALWAYS),
        4: _f("denied", BOOL),
        2: _f("reason"),
        3: _f("evaluationError"),
    },
    # ---- rbac.authorization.k8s.io/v1 -----------------------------------------------------
    "Role": _object((2, _list("rules", "PolicyRule", NULL))),
    "ClusterRole": _object(
        (2, _list("rules", "PolicyRule", NULL)),
        (3, _f("aggregationRule", "AggregationRule", PTR)),
    ),
    "PolicyRule": {
        1: _list("verbs", STRING, NULL),
        2: _list("apiGroups"),
        3: _list("resources"),
        4: _list("resourceNames"),
        5: _list("nonResourceURLs"),
    },
    "AggregationRule": {1: _list("clusterRoleSelectors", "LabelSelector")},
    "RoleBinding": _object(
        (2, _list("subjects", "Subject")), (3, _f("roleRef", "RoleRef", ALWAYS))
    ),
    "ClusterRoleBinding": _object(
        (2, _list("subjects", "Subject")), (3, _f("roleRef", "RoleRef", ALWAYS))
    ),
    "Subject": {
        1: _f("kind", STRING, ALWAYS),
        2: _f("apiGroup"),
        3: _f("name", STRING, ALWAYS),
        4: _f("namespace"),
    },
    "RoleRef": {
        1: _f("apiGroup", STRING, ALWAYS),
        2: _f("kind", STRING, ALWAYS),
        3: _f("name", STRING, ALWAYS),
    },
}

# The kinds a body may carry: (apiVersion, kind) -> message. DeleteOptions is
# registered in every group version, so it is looked up by kind alone.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Secret"): "Secret",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
}
_ANY_VERSION_KINDS = {"DeleteOptions": "DeleteOptions"}


class ProtobufError(Exception):
    """A body that cannot be decoded. ``problem`` is the decoder's own sentence;
    ``kind`` and ``version`` are the envelope's, once it was readable."""

    def __init__(self, problem: str, kind: str = "", version: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.kind = kind
        self.version = version

    def message(self, expected_kind: str, body: bytes) -> str:
        """The BadRequest message kube-apiserver sends for this body on a create or
        update of ``expected_kind``."""
        if self.kind:
            return (
                f'{self.kind} in version "{self.version}" cannot be handled as a '
                f"{expected_kind}: {self.problem}"
            )
        return (
            f"the object provided is unrecognized (must be of type {expected_kind}): "
            f"{self.problem} ({_summary(body)})"
        )


def supports(api_version: str, kind: str) -> bool:
    """Whether a body of this kind can be decoded here."""
    return kind in _ANY_VERSION_KINDS or (api_version, kind) in KINDS


def decode(body: bytes, *, api_version: str = "", kind: str = "") -> dict[str, Any]:
    """The JSON form of a protobuf body, ``kind`` and ``apiVersion`` included, or
    ProtobufError. ``api_version`` and ``kind`` fill in an envelope that leaves them
    empty, as the server fills them from the request URL. The kind is the envelope's:
    the caller checks it against the URL, as for a JSON body."""
    if not body:
        raise ProtobufError("empty data")
    if not body.startswith(MAGIC):
        raise ProtobufError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    if len(body) == len(MAGIC):
        raise ProtobufError("empty body")
    type_meta, raw = _envelope(memoryview(body)[len(MAGIC) :])
    got_version: str = type_meta.get("apiVersion", "")
    got_kind: str = type_meta.get("kind", "")
    if not got_kind:
        got_kind = kind
    if not got_version:
        got_version = api_version
    if not got_kind:
        raise ProtobufError(f"Object 'Kind' is missing in '{_go_type_meta(type_meta)}'")
    if not got_version:
        raise ProtobufError(
            f"Object 'apiVersion' is missing in '{_go_type_meta(type_meta)}'", got_kind
        )
    version = got_version.rpartition("/")[2]
    message = _ANY_VERSION_KINDS.get(got_kind) or KINDS.get((got_version, got_kind))
    if message is None:
        raise ProtobufError(
            f'no kind "{got_kind}" is registered for version "{got_version}" in scheme '
            '"pkg/api/legacyscheme/scheme.go:30"',
            got_kind,
            version,
        )
    try:
        obj = _message(raw, message)
    except ProtobufError as err:
        raise ProtobufError(err.problem, got_kind, version) from None
    return {"kind": got_kind, "apiVersion": got_version, **obj}


# ---- wire format ----------------------------------------------------------------------------


def _scan(data: memoryview, go_name: str) -> Iterator[tuple[int, int, Any]]:
    """The fields of one message on the wire: (number, wire type, payload), the payload
    an int for a varint and the bytes for a length-delimited field; fixed-width fields
    and groups, which no Kubernetes message has, are stepped over."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _END_GROUP:
            raise ProtobufError(f"proto: {go_name}: wiretype end group for non-group")
        if number <= 0:
            raise ProtobufError(f"proto: {go_name}: illegal tag {number} (wire type {wire})")
        payload: Any = None
        if wire == _VARINT:
            payload, pos = _varint(data, pos)
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            if length >= 1 << 63:
                raise ProtobufError("proto: negative length found during unmarshaling")
            if pos + length > end:
                raise ProtobufError("unexpected EOF")
            payload, pos = data[pos : pos + length], pos + length
        elif wire == _FIXED64:
            pos += 8
        elif wire == _FIXED32:
            pos += 4
        elif wire == _START_GROUP:
            pos = _skip_group(data, pos)
        else:
            raise ProtobufError(f"proto: illegal wireType {wire}")
        if pos > end:
            raise ProtobufError("unexpected EOF")
        yield number, wire, payload


def _skip_group(data: memoryview, pos: int) -> int:
    depth = 1
    while depth:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == _START_GROUP:
            depth += 1
        elif wire == _END_GROUP:
            depth -= 1
        elif wire == _VARINT:
            pos = _varint(data, pos)[1]
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            pos += length
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
        else:
            raise ProtobufError(f"proto: illegal wireType {wire}")
        if pos > len(data):
            raise ProtobufError("unexpected EOF")
    return pos


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if shift >= 64:
            raise ProtobufError("proto: integer overflow")
        if pos >= len(data):
            raise ProtobufError("unexpected EOF")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & ((1 << 64) - 1), pos
        shift += 7


def _envelope(data: memoryview) -> tuple[dict[str, Any], memoryview]:
    """runtime.Unknown: its typeMeta, and the raw bytes of the object. Its
    contentEncoding and contentType are not read, as kube-apiserver does not read them."""
    type_meta: dict[str, Any] = {}
    raw = memoryview(b"")
    for number, wire, payload in _scan(data, "Unknown"):
        if number in (1, 2) and wire != _LEN:
            name = "TypeMeta" if number == 1 else "Raw"
            raise ProtobufError(f"proto: wrong wireType = {wire} for field {name}")
        if number == 1:
            type_meta = _message(payload, "runtime.TypeMeta")
        elif number == 2:
            raw = payload
    return type_meta, raw


def _message(data: memoryview, name: str) -> dict[str, Any]:
    """One message as its JSON object."""
    spec = MESSAGES[name]
    go_name = name.rpartition(".")[2]
    found: dict[str, Any] = {}
    for number, wire, payload in _scan(data, go_name):
        field = spec.get(number)
        if field is None:
            continue
        if field.type == UNDESCRIBED:
            raise ProtobufError(
                f"field {field.name} of {go_name} is not supported by the emulator's "
                "protobuf decoder; send this object as JSON"
            )
        if field.map:
            if wire != _LEN:
                raise _wrong_wire_type(wire, field)
            key, value = _map_entry(payload, field)
            found.setdefault(field.name, {})[key] = value
        elif field.repeated:
            found.setdefault(field.name, []).append(_value(wire, payload, field))
        else:
            found[field.name] = _value(wire, payload, field)
    return _as_json(spec, found)


def _value(wire: int, payload: Any, field: Field) -> Any:
    if wire != (_VARINT if field.type in _VARINT_TYPES else _LEN):
        raise _wrong_wire_type(wire, field)
    if wire == _VARINT:
        return _from_varint(payload, field.type)
    return _from_bytes(payload, field.type)


def _wrong_wire_type(wire: int, field: Field) -> ProtobufError:
    return ProtobufError(f"proto: wrong wireType = {wire} for field {_go_field(field.name)}")


def _from_varint(raw: int, type_: str) -> Any:
    if type_ == BOOL:
        return raw != 0
    # Negative int32 and int64 values are written as 64-bit two's complement.
    return raw - (1 << 64) if raw >= 1 << 63 else raw


def _from_bytes(chunk: memoryview, type_: str) -> Any:
    if type_ == STRING:
        # Go does not check UTF-8 here; its JSON writes bad bytes as U+FFFD.
        return str(chunk, "utf-8", "replace")
    if type_ == BYTES:
        return base64.b64encode(chunk).decode()
    if type_ == TIME:
        return _time(chunk)
    if type_ == FIELDS_V1:
        raw = next((p for n, w, p in _scan(chunk, "FieldsV1") if n == 1 and w == _LEN), b"")
        try:
            return orjson.loads(bytes(raw))
        except orjson.JSONDecodeError as exc:
            raise ProtobufError(f"fieldsV1 is not JSON: {exc}") from None
    if type_ == INT_OR_STRING:
        parts = _message(chunk, "IntOrString")
        return parts.get("strVal", "") if parts.get("type", 0) == 1 else parts.get("intVal", 0)
    if type_ == QUANTITY:
        return _message(chunk, "Quantity").get("string", "")
    if type_ == EXTRA_VALUE:
        return _message(chunk, "ExtraValue").get("items", [])
    return _message(chunk, type_)


def _map_entry(chunk: memoryview, field: Field) -> tuple[str, Any]:
    # A map entry is a message {key = 1, value = 2}; a missing value is the zero value.
    value_field = Field("value", field.type, ALWAYS)
    key, value, has_value = "", None, False
    for number, wire, payload in _scan(chunk, "MapEntry"):
        if number == 1:
            key = _value(wire, payload, Field("key", STRING))
        elif number == 2:
            value, has_value = _value(wire, payload, value_field), True
    return key, value if has_value else _zero(value_field)


def _time(chunk: memoryview) -> str | None:
    # An empty Time is Go's zero time, which JSON writes as null; the nanoseconds are
    # dropped, as metav1.Time's JSON has seconds precision.
    if not len(chunk):
        return None
    seconds = _message(chunk, "Timestamp").get("seconds", 0)
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        raise ProtobufError(f"Time: {seconds} seconds is out of range") from None


def _as_json(spec: dict[int, Field], found: dict[str, Any]) -> dict[str, Any]:
    """The fields in table order: omitempty drops zero scalars, structs are always
    written, and fields JSON always writes get their zero value when not on the wire."""
    out: dict[str, Any] = {}
    for field in spec.values():
        if field.name in found:
            value = found[field.name]
            if field.mode == OMIT and field.type in _SCALARS and not value:
                continue
            out[field.name] = value
        elif field.mode in (NULL, ALWAYS):
            out[field.name] = _zero(field)
    return out


def _zero(field: Field) -> Any:
    if field.mode == NULL or field.repeated or field.map or field.type in (TIME, FIELDS_V1):
        return None
    if field.type in (STRING, BYTES, QUANTITY):
        return ""
    if field.type in (INT, INT_OR_STRING):
        return 0
    if field.type == BOOL:
        return False
    return _message(memoryview(b""), field.type)


# Helper messages read into the JSON values above.
MESSAGES.update(
    {
        "IntOrString": {1: _f("type", INT), 2: _f("intVal", INT), 3: _f("strVal")},
        "Quantity": {1: _f("string")},
        "ExtraValue": {1: _list("items")},
        "Timestamp": {1: _f("seconds", INT), 2: _f("nanos", INT)},
    }
)


def _go_field(name: str) -> str:
    return name[:1].upper() + name[1:]


def _go_type_meta(type_meta: dict[str, Any]) -> str:
    return (
        f'runtime.TypeMeta{{APIVersion:"{type_meta.get("apiVersion", "")}", '
        f'Kind:"{type_meta.get("kind", "")}"}}'
    )


def _summary(body: bytes) -> str:
    # kube-apiserver's summary of an unreadable body: its first 30 bytes, in hex
    # unless it looks like JSON.
    if not body:
        return "<empty>"
    head = body[:30]
    shown = head.decode("utf-8", "replace") if body[:1] == b"{" else head.hex()
    return shown + " ..." if len(body) > 30 else shown
