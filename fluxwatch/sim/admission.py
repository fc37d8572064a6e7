"""What happens to an object between the request body and storage, in the real server's order.

kube-apiserver decodes a write (unknown fields dropped, or refused under
``fieldValidation=Strict``), prunes and defaults a custom resource against its
structural schema, validates it (ObjectMeta, then the kind's own rules or the
CRD's schema and CEL rules), and records who changed which fields in
``managedFields``. ``Admission.admit`` is that sequence for the embedded cluster;
the store calls it on every create, update and patch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.resources import ResourceType
from fluxwatch.sim.schema import unknown_field_warnings


@dataclass(slots=True)
class WriteOptions:
    """How one write was asked for: ``fieldValidation``, ``fieldManager`` (or the user
    agent it defaults from), and the warnings the answer will carry."""

    field_validation: str = "Warn"
    manager: str = ""
    user_agent: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)
    # False only for in-process seeding of objects a real cluster can hold although its
    # validation would refuse them now (stored before a CRD's schema was tightened).
    validate: bool = True
    # True once server-side apply has written managedFields: the write path then leaves
    # them as they are instead of recording an Update.
    applied: bool = False


class CustomSchema(Protocol):
    """One CRD version's compiled structural schema (``fluxwatch.sim.schema.Schema``)."""

    def prune(self, obj: dict[str, Any]) -> list[str]: ...

    def default(self, obj: dict[str, Any]) -> None: ...

    def validate(
        self,
        obj: dict[str, Any],
        old: dict[str, Any] | None = None,
        *,
        preceding: Sequence[FieldError] = (),
    ) -> list[FieldError]: ...

    def validate_status(
        self, obj: dict[str, Any], old: dict[str, Any], *, preceding: Sequence[FieldError] = ()
    ) -> list[FieldError]: ...

    def field_type(self, path: tuple[str | int, ...]) -> tuple[str, tuple[str, ...]]: ...


class TypedDecodingError(Exception):
    """A body whose fields do not decode into the kind's Go types (a string where an
    int32 goes, a MicroTime in another layout): a 400 carrying the decoder's words,
    which win over any unknown-field errors, as the real decoder's do."""


class StrictDecodingError(Exception):
    """Unknown fields under ``fieldValidation=Strict``: a 400, as the real decoder answers.
    ``problems`` are worded like ``unknown field "spec.foo"``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("strict decoding error: " + ", ".join(problems))


# Hooks the admission steps are made of; each defaults to doing nothing, so that a
# kind without rules of its own passes through unchanged. UnknownFields removes the
# fields the kind does not define and words each as the strict decoder does.
UnknownFields = Callable[[ResourceType, dict[str, Any]], list[str]]
Validate = Callable[[ResourceType, dict[str, Any], dict[str, Any] | None], list[FieldError]]
Default = Callable[[ResourceType, dict[str, Any]], None]
# Decodes a built-in kind's typed fields in place (as the Go type reads and writes them
# back); raises TypedDecodingError.
TypedDecode = Callable[[ResourceType, dict[str, Any]], None]


class Admission:
    """The write pipeline of one store. ``schemas`` maps ``<plural>.<version>.<group>``
    to the compiled schema of a CRD version, kept by CRD registration."""

    def __init__(self) -> None:
        self.schemas: dict[str, CustomSchema] = {}
        self.builtin_unknown: UnknownFields | None = None
        self.builtin_typed: TypedDecode | None = None
        self.builtin_default: Default | None = None
        self.builtin_validate: Validate | None = None
        self.meta_validate: Validate | None = None

    def schema_for(self, res: ResourceType) -> CustomSchema | None:
        return self.schemas.get(f"{res.plural}.{res.version}.{res.group}")

    def decode(
        self, res: ResourceType, obj: dict[str, Any], opts: WriteOptions, *, typed: bool = True
    ) -> None:
        """Drop the fields the kind does not define, as decoding into Go types does;
        ``Strict`` refuses them and ``Warn`` says so in a Warning header. ``typed``: the
        built-in kind's typed fields are decoded first (request bodies; a patched object's
        decode error is the patch handler's 422, not modelled)."""
        if typed and not res.custom and self.builtin_typed is not None:
            self.builtin_typed(res, obj)
        if res.custom:
            schema = self.schema_for(res)
            unknown = unknown_field_warnings(schema.prune(obj)) if schema is not None else []
        elif self.builtin_unknown is not None:
            unknown = self.builtin_unknown(res, obj)
        else:
            unknown = []
        if not unknown:
            return
        if opts.field_validation == "Strict":
            raise StrictDecodingError(unknown)
        if opts.field_validation == "Warn":
            opts.warnings.extend(unknown)

    def default(self, res: ResourceType, obj: dict[str, Any]) -> None:
        if res.custom:
            schema = self.schema_for(res)
            if schema is not None:
                schema.default(obj)
        elif self.builtin_default is not None:
            self.builtin_default(res, obj)

    def validate(
        self,
        res: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        subresource: str | None = None,
    ) -> list[FieldError]:
        """A built-in kind's own rules include its ObjectMeta's; a custom resource gets
        the ObjectMeta rules, then its schema's and CEL rules' (a status write: the
        status against its schema), which ObjectMeta errors keep from running CEL."""
        errors: list[FieldError] = []
        if res.custom:
            if self.meta_validate is not None:
                errors.extend(self.meta_validate(res, obj, old))
            schema = self.schema_for(res)
            if schema is not None and subresource == "status" and old is not None:
                errors.extend(schema.validate_status(obj, old, preceding=errors))
            elif schema is not None:
                errors.extend(schema.validate(obj, old, preceding=errors))
        elif self.builtin_validate is not None:
            errors.extend(self.builtin_validate(res, obj, old))
        return errors


def builtin_admission() -> Admission:
    """An Admission with Kubernetes' own defaulting and validation of the built-in kinds
    and the ObjectMeta rules custom resources get."""
    from fluxwatch.sim import openapi, validation

    def default(res: ResourceType, obj: dict[str, Any]) -> None:
        validation.default(res.key, obj)

    def typed(res: ResourceType, obj: dict[str, Any]) -> None:
        try:
            validation.decode(res.key, obj)
        except ValueError as exc:
            raise TypedDecodingError(str(exc)) from None

    def validate(
        res: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[FieldError]:
        return validation.validate(res.key, obj, old)

    def meta(
        res: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[FieldError]:
        if old is not None:
            return validation.validate_object_meta_update(obj, old)
        return validation.validate_object_meta(
            obj, namespaced=res.namespaced, name_rule=validation.name_is_dns_subdomain
        )

    admission = Admission()
    admission.builtin_unknown = openapi.drop_unknown_fields
    admission.builtin_default = default
    admission.builtin_typed = typed
    admission.builtin_validate = validate
    admission.meta_validate = meta
    return admission
