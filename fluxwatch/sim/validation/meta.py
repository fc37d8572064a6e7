"""ObjectMeta validation on create and update, as every kind of a real server runs it
(k8s.io/apimachinery/pkg/api/validation objectmeta.go, and the extra finalizer rule
pkg/apis/core/validation adds for built-in kinds).

The error order follows the Go code, so a multi-error message reads the same.
"""

from __future__ import annotations

import json
from typing import Any, Final

from fluxwatch.sim.fielderrors import (
    FieldError,
    Verbatim,
    forbidden,
    invalid_value,
    required,
    too_long,
)
from fluxwatch.sim.validation.rules import (
    NameRule,
    go_string_slice,
    go_time,
    is_dns1123_label,
    is_label_value,
    is_qualified_name,
)

TOTAL_ANNOTATION_SIZE: Final = 256 * 1024
FIELD_MANAGER_MAX: Final = 128
SUBRESOURCE_NAME_MAX: Final = 256
FIELD_IMMUTABLE: Final = "field is immutable"
ZERO_TIME: Final = "0001-01-01 00:00:00 +0000 UTC"  # Go's zero time.Time, printed
STANDARD_FINALIZERS: Final = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def as_dict(value: Any) -> dict[str, Any]:
    """A map field, or an empty one when absent (a wrong type is a decode error, not ours)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """v1validation.ValidateLabels: keys are qualified names, values label values."""
    errs: list[FieldError] = []
    for key, value in sorted(as_dict(labels).items()):
        errs += [invalid_value(path, key, m) for m in is_qualified_name(key)]
        errs += [invalid_value(path, value, m) for m in is_label_value(as_str(value))]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    ann = as_dict(annotations)
    for key in sorted(ann):
        # Case does not matter in an annotation key, so it is checked lowercased.
        errs += [invalid_value(path, key, m) for m in is_qualified_name(key.lower())]
    size = sum(len(k.encode()) + len(as_str(v).encode()) for k, v in ann.items())
    if size > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs


def _group_version_kind(api_version: str, kind: str) -> tuple[str, str, str]:
    # schema.FromAPIVersionAndKind: an unparsable apiVersion leaves only the kind.
    if api_version == "":
        return "", "", kind
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0], kind
    if len(parts) == 2:
        return parts[0], parts[1], kind
    return "", "", kind


def _go_owner_ref(ref: dict[str, Any]) -> str:
    def ptr(key: str) -> str:
        return "(*bool)(nil)" if ref.get(key) is None else f"&{str(bool(ref[key])).lower()}"

    return (
        f"v1.OwnerReference{{APIVersion:{json.dumps(as_str(ref.get('apiVersion')))}, "
        f"Kind:{json.dumps(as_str(ref.get('kind')))}, Name:{json.dumps(as_str(ref.get('name')))}, "
        f"UID:{json.dumps(as_str(ref.get('uid')))}, Controller:{ptr('controller')}, "
        f"BlockOwnerDeletion:{ptr('blockOwnerDeletion')}}}"
    )


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    first_controller = ""
    all_refs = [r for r in as_list(refs) if isinstance(r, dict)]
    for ref in all_refs:
        api_version, kind = as_str(ref.get("apiVersion")), as_str(ref.get("kind"))
        group, version, kind = _group_version_kind(api_version, kind)
        if not version:
            errs.append(
                invalid_value(f"{path}.apiVersion", api_version, "version must not be empty")
            )
        if not kind:
            errs.append(invalid_value(f"{path}.kind", kind, "kind must not be empty"))
        if not as_str(ref.get("name")):
            errs.append(invalid_value(f"{path}.name", "", "name must not be empty"))
        if not as_str(ref.get("uid")):
            errs.append(invalid_value(f"{path}.uid", "", "uid must not be empty"))
        if (group, version, kind) == ("", "v1", "Event"):
            errs.append(
                invalid_value(
                    path,
                    Verbatim(_go_owner_ref(ref)),
                    "/v1, Kind=Event is disallowed from being an owner",
                )
            )
        if ref.get("controller") is True:
            current = f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}"
            if first_controller:
                listing = "[]v1.OwnerReference{" + ", ".join(map(_go_owner_ref, all_refs)) + "}"
                errs.append(
                    invalid_value(
                        path,
                        Verbatim(listing),
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


def validate_finalizers(finalizers: Any, path: str, *, builtin: bool) -> list[FieldError]:
    """ValidateFinalizers; ``builtin`` adds the core rule that a finalizer without a
    '/' must be one of the standard names."""
    errs: list[FieldError] = []
    names = [f for f in as_list(finalizers) if isinstance(f, str)]
    for name in names:
        errs += [invalid_value(path, name, m) for m in is_qualified_name(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(
            invalid_value(
                path,
                Verbatim(go_string_slice(names)),
                "finalizer orphan and foregroundDeletion cannot be both set",
            )
        )
    if builtin:
        errs += kube_finalizer_names(names, path)
    return errs


def kube_finalizer_names(names: list[str], path: str) -> list[FieldError]:
    return [
        invalid_value(
            f"{path}[{i}]",
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )
        for i, name in enumerate(names)
        if "/" not in name and name not in STANDARD_FINALIZERS
    ]


def validate_managed_fields(entries: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, entry in enumerate(as_list(entries)):
        at = f"{path}[{i}]"
        entry = as_dict(entry)
        operation = as_str(entry.get("operation"))
        if operation not in ("Apply", "Update"):
            errs.append(invalid_value(f"{at}.operation", operation, "must be `Apply` or `Update`"))
        fields_type = as_str(entry.get("fieldsType"))
        if fields_type and fields_type != "FieldsV1":
            errs.append(invalid_value(f"{at}.fieldsType", fields_type, "must be `FieldsV1`"))
        manager = as_str(entry.get("manager"))
        if len(manager) > FIELD_MANAGER_MAX:
            errs.append(too_long(f"{at}.manager", FIELD_MANAGER_MAX))
        for pos, char in enumerate(manager):
            if not char.isprintable():
                errs.append(
                    invalid_value(
                        f"{at}.manager",
                        manager,
                        f"invalid character U+{ord(char):04X} (at position {pos})",
                    )
                )
        if len(as_str(entry.get("subresource"))) > SUBRESOURCE_NAME_MAX:
            errs.append(too_long(f"{at}.subresource", SUBRESOURCE_NAME_MAX))
    return errs


def validate_object_meta(
    obj: dict[str, Any],
    *,
    namespaced: bool,
    name_rule: NameRule,
    builtin: bool = False,
    path: str = "metadata",
) -> list[FieldError]:
    """ValidateObjectMeta on create; ``builtin`` for kinds validated by
    pkg/apis/core/validation's wrapper (it adds the standard-finalizer rule)."""
    md = as_dict(obj.get("metadata"))
    errs: list[FieldError] = []
    generate_name = as_str(md.get("generateName"))
    if generate_name:
        errs += [
            invalid_value(f"{path}.generateName", generate_name, m)
            for m in name_rule(generate_name, True)
        ]
    name = as_str(md.get("name"))
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [invalid_value(f"{path}.name", name, m) for m in name_rule(name, False)]
    namespace = as_str(md.get("namespace"))
    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs += [
                invalid_value(f"{path}.namespace", namespace, m)
                for m in is_dns1123_label(namespace)
            ]
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    generation = as_int(md.get("generation"))
    if generation < 0:
        errs.append(
            invalid_value(f"{path}.generation", generation, "must be greater than or equal to 0")
        )
    errs += validate_labels(md.get("labels"), f"{path}.labels")
    errs += validate_annotations(md.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(md.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_finalizers(md.get("finalizers"), f"{path}.finalizers", builtin=builtin)
    errs += validate_managed_fields(md.get("managedFields"), f"{path}.managedFields")
    return errs


def _immutable_value(key: str, value: Any) -> Any:
    # How Go prints the old/new value of each immutable metadata field.
    if key in ("creationTimestamp", "deletionTimestamp"):
        if not value:
            return "null" if key == "deletionTimestamp" else Verbatim(ZERO_TIME)
        return Verbatim(go_time(str(value)))
    if key == "deletionGracePeriodSeconds":
        return "null" if value is None else value
    return as_str(value)


def validate_object_meta_update(
    obj: dict[str, Any], old: dict[str, Any], *, builtin: bool = False, path: str = "metadata"
) -> list[FieldError]:
    """ValidateObjectMetaUpdate: identity fields are immutable, the rest re-checked."""
    md, old_md = as_dict(obj.get("metadata")), as_dict(old.get("metadata"))
    errs: list[FieldError] = []
    if old_md.get("deletionTimestamp"):
        new_f = {f for f in as_list(md.get("finalizers")) if isinstance(f, str)}
        old_f = {f for f in as_list(old_md.get("finalizers")) if isinstance(f, str)}
        extra = sorted(new_f - old_f)
        if extra:
            errs.append(
                forbidden(
                    f"{path}.finalizers",
                    "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {go_string_slice(extra)}",
                )
            )
    if not as_str(md.get("resourceVersion")):
        errs.append(invalid_value(f"{path}.resourceVersion", "", "must be specified for an update"))
    generation, old_generation = as_int(md.get("generation")), as_int(old_md.get("generation"))
    if generation < old_generation:
        errs.append(invalid_value(f"{path}.generation", generation, "must not be decremented"))
    for key in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ):
        new_value, old_value = md.get(key), old_md.get(key)
        if (new_value or None) != (old_value or None):
            errs.append(
                invalid_value(f"{path}.{key}", _immutable_value(key, new_value), FIELD_IMMUTABLE)
            )
    errs += validate_labels(md.get("labels"), f"{path}.labels")
    errs += validate_annotations(md.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(md.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_managed_fields(md.get("managedFields"), f"{path}.managedFields")
    if builtin:
        names = [f for f in as_list(md.get("finalizers")) if isinstance(f, str)]
        errs += kube_finalizer_names(names, f"{path}.finalizers")
    return errs


def immutable(path: str, new: Any, old: Any, shown: Any = None) -> list[FieldError]:
    """ValidateImmutableField; ``shown`` is how the new value prints when not a scalar."""
    if new == old:
        return []
    return [invalid_value(path, new if shown is None else shown, FIELD_IMMUTABLE)]
