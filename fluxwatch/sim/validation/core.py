"""Validation of the core/v1 kinds the embedded cluster serves: Namespace, Secret,
ConfigMap, ServiceAccount and Service, after pkg/apis/core/validation and the
registry strategies (pkg/registry/core/*) of Kubernetes 1.32.

Data values arrive as the JSON the client sent: Secret ``data`` and ConfigMap
``binaryData`` are base64 text, so sizes and contents are judged on the decoded
bytes, as the real server judges them after decoding.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from fluxwatch.sim.fielderrors import (
    FieldError,
    Verbatim,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
    too_long,
)
from fluxwatch.sim.validation.meta import (
    as_dict,
    as_int,
    as_list,
    as_str,
    immutable,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from fluxwatch.sim.validation.rules import (
    go_string_slice,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
)

MAX_SECRET_SIZE: Final = 1024 * 1024  # also the ConfigMap limit (core.MaxSecretSize)
IMMUTABLE_WHEN_SET: Final = "field is immutable when `immutable` is set"
REDACTED: Final = "<secret contents redacted>"


def decoded(value: Any) -> bytes:
    """The bytes of one base64 data value; text that is not base64 counts as itself
    (the real server refuses it earlier, when decoding the request)."""
    text = as_str(value)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


# --- Namespace ---------------------------------------------------------------------


def validate_finalizer_name(name: str, path: str) -> list[FieldError]:
    errs = [invalid_value(path, name, m) for m in is_qualified_name(name)]
    if "/" not in name and name not in ("kubernetes", "orphan", "foregroundDeletion"):
        errs.append(
            invalid_value(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return errs


def namespace_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateNamespace: the name is a DNS label; spec.finalizers are finalizer names
    (each reported at ``spec.finalizers``, without an index, as the real server does)."""
    errs = validate_object_meta(obj, namespaced=False, name_rule=name_is_dns_label, builtin=True)
    for name in as_list(as_dict(obj.get("spec")).get("finalizers")):
        errs += validate_finalizer_name(as_str(name), "spec.finalizers")
    return errs


def namespace_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateNamespaceUpdate checks metadata only: the strategy puts the old spec and
    status back (see ``keep_namespace_spec``)."""
    return validate_object_meta_update(obj, old, builtin=True)


def keep_namespace_spec(obj: dict[str, Any], old: dict[str, Any]) -> None:
    """What ValidateNamespaceUpdate does to the new object: spec.finalizers and status
    change only through the finalize and status subresources."""
    spec = dict(as_dict(obj.get("spec")))
    old_finalizers = as_dict(old.get("spec")).get("finalizers")
    if old_finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = old_finalizers
    obj["spec"] = spec
    if "status" in old:
        obj["status"] = old["status"]
    else:
        obj.pop("status", None)


# --- Secret ------------------------------------------------------------------------

_SA_NAME_ANNOTATION: Final = "kubernetes.io/service-account.name"


def secret_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateSecret."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    data = as_dict(obj.get("data"))
    total = 0
    for key in sorted(data):
        errs += [invalid_value(f"data[{key}]", key, m) for m in is_config_map_key(key)]
        total += len(decoded(data[key]))
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    kind = as_str(obj.get("type"))
    if kind == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
        if not as_str(annotations.get(_SA_NAME_ANNOTATION)):
            errs.append(required(f"metadata.annotations[{_SA_NAME_ANNOTATION}]"))
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errs.append(required(f"data[{key}]"))
        else:
            problem = _json_object_error(decoded(data[key]))
            if problem:
                errs.append(invalid_value(f"data[{key}]", REDACTED, problem))
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            # The real path carries a literal "%s": field.NewPath("data[%s]").Key(...).
            errs.append(required("data[%s][username]"))
            errs.append(required("data[%s][password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not decoded(data.get("ssh-privatekey")):
            errs.append(required("data[%s][ssh-privatekey]"))
    elif kind == "kubernetes.io/tls":
        if "tls.crt" not in data:
            errs.append(required("data[tls.crt]"))
        if "tls.key" not in data:
            errs.append(required("data[tls.key]"))
    return errs


def _json_object_error(raw: bytes) -> str:
    """Why ``raw`` does not unmarshal into a Go map, worded as encoding/json words it."""
    text = raw.decode(errors="replace")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return _go_syntax_error(text, exc)
    if value is None or isinstance(value, dict):
        return ""  # JSON null unmarshals into a map without error
    kinds = {list: "array", str: "string", bool: "bool"}
    word = kinds.get(type(value), "number")
    return f"json: cannot unmarshal {word} into Go value of type map[string]interface {{}}"


def _go_syntax_error(text: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated"):
        return "unexpected end of JSON input"
    char = text[exc.pos]
    shown = "'\\''" if char == "'" else f"'{char}'"
    if exc.msg.startswith("Expecting property name"):
        where = "looking for beginning of object key string"
    elif exc.msg.startswith("Expecting ':'"):
        where = "after object key"
    elif exc.msg.startswith("Expecting ','"):
        inner = text[: exc.pos]
        in_object = inner.rfind("{") > inner.rfind("[")
        where = "after object key:value pair" if in_object else "after array element"
    elif exc.msg.startswith("Extra data"):
        where = "after top-level value"
    else:
        where = "looking for beginning of value"
    return f"invalid character {shown} {where}"


def secret_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateSecretUpdate: type never changes; an immutable Secret keeps its data."""
    errs = validate_object_meta_update(obj, old, builtin=True)
    errs += immutable("type", as_str(obj.get("type")), as_str(old.get("type")))
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
        if as_dict(obj.get("data")) != as_dict(old.get("data")):
            errs.append(forbidden("data", IMMUTABLE_WHEN_SET))
    return errs + secret_create(obj)


# --- ConfigMap ---------------------------------------------------------------------


def configmap_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateConfigMap."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)
    data, binary = as_dict(obj.get("data")), as_dict(obj.get("binaryData"))
    total = 0
    for key in sorted(data):
        errs += [invalid_value(f"data[{key}]", key, m) for m in is_config_map_key(key)]
        if key in binary:
            errs.append(
                invalid_value(f"data[{key}]", key, "duplicate of key present in binaryData")
            )
        total += len(as_str(data[key]).encode())
    for key in sorted(binary):
        errs += [invalid_value(f"binaryData[{key}]", key, m) for m in is_config_map_key(key)]
        total += len(decoded(binary[key]))
    if total > MAX_SECRET_SIZE:
        # The real server names no field: the whole object is too big.
        errs.append(too_long("", MAX_SECRET_SIZE))
    return errs


def configmap_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(obj, old, builtin=True)
    if old.get("immutable") is True:
        if obj.get("immutable") is not True:
            errs.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
        if as_dict(obj.get("data")) != as_dict(old.get("data")):
            errs.append(forbidden("data", IMMUTABLE_WHEN_SET))
        if as_dict(obj.get("binaryData")) != as_dict(old.get("binaryData")):
            errs.append(forbidden("binaryData", IMMUTABLE_WHEN_SET))
    return errs + configmap_create(obj)


# --- ServiceAccount ----------------------------------------------------------------


def serviceaccount_create(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj, namespaced=True, name_rule=name_is_dns_subdomain, builtin=True)


def serviceaccount_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta_update(obj, old, builtin=True) + serviceaccount_create(obj)


# --- Service -----------------------------------------------------------------------

SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES: Final = ("ClientIP", "None")
PROTOCOLS: Final = ("SCTP", "TCP", "UDP")


def validate_port_num_or_name(value: Any, path: str) -> list[FieldError]:
    """ValidatePortNumOrName for an IntOrString port (targetPort, NetworkPolicy ports)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [invalid_value(path, value, m) for m in is_valid_port_num(value)]
    if isinstance(value, str):
        return [invalid_value(path, value, m) for m in is_valid_port_name(value)]
    return []


def _service_port(
    port: dict[str, Any], path: str, need_name: bool, seen: set[str]
) -> list[FieldError]:
    errs: list[FieldError] = []
    name = as_str(port.get("name"))
    if need_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += [invalid_value(f"{path}.name", name, m) for m in is_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(f"{path}.name", name))
        seen.add(name)
    number = port.get("port")
    number = number if isinstance(number, int) else 0
    errs += [invalid_value(f"{path}.port", number, m) for m in is_valid_port_num(number)]
    protocol = as_str(port.get("protocol"))
    if not protocol:
        errs.append(required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    errs += validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    return errs


def _go_service_port(port: dict[str, Any]) -> Verbatim:
    target = port.get("targetPort")
    if isinstance(target, str):
        target_text = f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{json.dumps(target)}}}"
    else:
        target_text = f'intstr.IntOrString{{Type:0, IntVal:{as_int(target)}, StrVal:""}}'
    return Verbatim(
        f"core.ServicePort{{Name:{json.dumps(as_str(port.get('name')))}, "
        f"Protocol:{json.dumps(as_str(port.get('protocol')))}, AppProtocol:(*string)(nil), "
        f"Port:{as_int(port.get('port'))}, TargetPort:{target_text}, "
        f"NodePort:{as_int(port.get('nodePort'))}}}"
    )


def _service_type_rules(spec: dict[str, Any], kind: str) -> list[FieldError]:
    errs: list[FieldError] = []
    cluster_ip = as_str(spec.get("clusterIP"))
    if kind in ("LoadBalancer", "NodePort") and cluster_ip == "None":
        errs.append(
            invalid_value(
                "spec.clusterIPs[0]", cluster_ip, f"may not be set to 'None' for {kind} services"
            )
        )
    elif kind == "ExternalName":
        for name in ("clusterIPs", "ipFamilies"):
            if as_list(spec.get(name)) or (name == "clusterIPs" and cluster_ip):
                errs.append(forbidden(f"spec.{name}", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(
                forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services")
            )
        # A CNAME may end in a dot, fully qualified.
        cname = as_str(spec.get("externalName")).removesuffix(".")
        if not cname:
            errs.append(required("spec.externalName"))
        else:
            errs += [
                invalid_value("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)
            ]
    return errs


def service_create(obj: dict[str, Any]) -> list[FieldError]:
    """ValidateService: names are DNS-1035 labels; ports, type and affinity are
    checked, IP allocation and load-balancer details are not."""
    errs = validate_object_meta(obj, namespaced=True, name_rule=name_is_dns1035_label, builtin=True)
    spec = as_dict(obj.get("spec"))
    kind = as_str(spec.get("type"))
    ports = [p for p in as_list(spec.get("ports")) if isinstance(p, dict)]
    if not ports and spec.get("clusterIP") != "None" and kind != "ExternalName":
        errs.append(required("spec.ports"))
    errs += _service_type_rules(spec, kind)
    seen: set[str] = set()
    for i, port in enumerate(ports):
        errs += _service_port(port, f"spec.ports[{i}]", len(ports) > 1, seen)
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    affinity = as_str(spec.get("sessionAffinity"))
    if not affinity:
        errs.append(required("spec.sessionAffinity"))
    elif affinity not in SESSION_AFFINITIES:
        errs.append(not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ClusterIP":
        for i, port in enumerate(ports):
            if as_int(port.get("nodePort")):
                errs.append(
                    forbidden(
                        f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"
                    )
                )
    seen_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        key = (as_str(port.get("protocol")), as_int(port.get("port")))
        if key in seen_ports:
            # The duplicate is shown as the (protocol, port) key the server compared.
            errs.append(
                duplicate(
                    f"spec.ports[{i}]", _go_service_port({"protocol": key[0], "port": key[1]})
                )
            )
        seen_ports.add(key)
    return errs


def service_update(obj: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceUpdate: an allocated cluster IP stays (unless either side is an
    ExternalName Service)."""
    errs = validate_object_meta_update(obj, old, builtin=True)
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    external = "ExternalName" in (as_str(spec.get("type")), as_str(old_spec.get("type")))
    new_ips = [as_str(ip) for ip in as_list(spec.get("clusterIPs"))] or (
        [as_str(spec["clusterIP"])] if as_str(spec.get("clusterIP")) else []
    )
    old_ips = [as_str(ip) for ip in as_list(old_spec.get("clusterIPs"))] or (
        [as_str(old_spec["clusterIP"])] if as_str(old_spec.get("clusterIP")) else []
    )
    if not external and new_ips and old_ips and new_ips[0] != old_ips[0]:
        errs.append(
            invalid_value(
                "spec.clusterIPs[0]", Verbatim(go_string_slice(new_ips)), "may not change once set"
            )
        )
    return errs + service_create(obj)
