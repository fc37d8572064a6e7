"""The options of a write (Create/Update/Patch/DeleteOptions), read and validated as
kube-apiserver 1.32 does before it touches the object.

The handlers decode the query into the verb's options and run apimachinery's
``ValidateCreateOptions`` (or Update/Patch/Delete): every problem found is one cause
of a single 422 ``CreateOptions.meta.k8s.io "" is invalid``, answered even when the
object does not exist. A DELETE reads its DeleteOptions from the body when it has one
and from the query only when it has none (``DeleteResource``), so ``?dryRun=All``
beside a body is not a dry run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxwatch.sim import fielderrors
from fluxwatch.sim.fielderrors import FieldError, Verbatim
from fluxwatch.sim.store import bad_request, invalid_options
from fluxwatch.sim.validation.rules import go_string_slice

DRY_RUN_ALL = "All"
FOREGROUND, BACKGROUND, ORPHAN = "Foreground", "Background", "Orphan"
# sets.NewString("", Ignore, Warn, Strict).List(): sorted, the empty value first.
_FIELD_VALIDATION = ("", "Ignore", "Strict", "Warn")
# strconv.ParseBool, which decodes boolean query parameters.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def dry_run_errors(values: list[str]) -> list[FieldError]:
    """ValidateDryRun: only "All"; the bad value is the whole list, as ``%#v`` prints it."""
    if all(v == DRY_RUN_ALL for v in values):
        return []
    return [fielderrors.not_supported("dryRun", Verbatim(go_string_slice(values)), [DRY_RUN_ALL])]


def field_validation_errors(value: str) -> list[FieldError]:
    if value in _FIELD_VALIDATION:
        return []
    return [fielderrors.not_supported("fieldValidation", value, _FIELD_VALIDATION)]


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    preconditions: Mapping[str, Any] | None
    propagation_policy: str | None
    orphan_dependents: bool | None
    dry_run: bool


def delete_options(body: Any, query: Mapping[str, str], dry_run: list[str]) -> DeleteOptions:
    """DeleteOptions from ``body`` (already decoded; None without one) or else the query
    (``dry_run`` is its ``dryRun`` values), validated as ValidateDeleteOptions does."""
    if body is not None:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be DeleteOptions")
        dry_run = list(body.get("dryRun") or [])
        policy = body.get("propagationPolicy")
        orphan = body.get("orphanDependents")
        preconditions = body.get("preconditions")
    else:
        policy = query.get("propagationPolicy")
        orphan = _parse_bool(query.get("orphanDependents"))
        preconditions = None
    errors: list[FieldError] = []
    if orphan is not None and policy is not None:
        errors.append(
            fielderrors.invalid_value(
                "propagationPolicy",
                policy,
                "orphanDependents and deletionPropagation cannot be both set",
            )
        )
    if policy is not None and policy not in (FOREGROUND, BACKGROUND, ORPHAN):
        errors.append(
            fielderrors.not_supported(
                "propagationPolicy", policy, (FOREGROUND, BACKGROUND, ORPHAN, "nil")
            )
        )
    errors += dry_run_errors(dry_run)
    if errors:
        raise invalid_options("DeleteOptions", errors)
    return DeleteOptions(
        preconditions=preconditions if isinstance(preconditions, Mapping) else None,
        propagation_policy=policy,
        orphan_dependents=orphan if isinstance(orphan, bool) else None,
        dry_run=bool(dry_run),
    )


def _parse_bool(raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')
