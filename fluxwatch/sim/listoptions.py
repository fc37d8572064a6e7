"""The query of a LIST or WATCH read, defaulted and validated as kube-apiserver 1.32 does.

The API server decodes ``resourceVersion``, ``resourceVersionMatch``,
``sendInitialEvents`` and ``continue`` into ListOptions, defaults them (with the
WatchList feature, beta and on in 1.32, a watch without a version, or from "0",
becomes ``sendInitialEvents=true&resourceVersionMatch=NotOlderThan``), then
validates them; a violation is a 422 ``ListOptions.meta.k8s.io "" is invalid``.
Reading both through one function keeps the list and the watch path in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxwatch.sim import fielderrors
from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.store import ApiError, bad_request

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
# strconv.ParseBool, which decodes boolean query parameters.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True, slots=True)
class ListOptions:
    resource_version: str  # "" when not given
    match: str  # resourceVersionMatch, "" when not given
    send_initial_events: bool | None  # None when not given (and not defaulted)
    allow_bookmarks: bool
    continue_token: str

    @property
    def watch_list(self) -> bool:
        """A "watch-list" stream: initial events, then the bookmark that ends them."""
        return bool(self.send_initial_events) and self.allow_bookmarks


def _parse_bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw is None:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def list_options(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    """The defaulted ListOptions of a request; ApiError 422 for a forbidden combination."""
    rv = query.get("resourceVersion") or ""
    match = query.get("resourceVersionMatch") or ""
    initial = _parse_bool(query, "sendInitialEvents")
    bookmarks = bool(_parse_bool(query, "allowWatchBookmarks"))
    token = query.get("continue") or ""
    # SetListOptionsDefaults with the WatchList feature on.
    if watch and initial is None and not match and rv in ("", "0"):
        initial, match = True, NOT_OLDER_THAN
    errors = (
        _watch_errors(match, initial, token) if watch else _list_errors(rv, match, initial, token)
    )
    if errors:
        raise invalid_list_options(errors)
    return ListOptions(rv, match, initial, bookmarks, token)


def _list_errors(rv: str, match: str, initial: bool | None, token: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if match:
        if not rv:
            errors.append(
                fielderrors.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )
            )
        if token:
            errors.append(
                fielderrors.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
        if match not in (EXACT, NOT_OLDER_THAN):
            errors.append(
                fielderrors.not_supported(
                    "resourceVersionMatch", match, (EXACT, NOT_OLDER_THAN, "")
                )
            )
        if match == EXACT and rv == "0":
            errors.append(
                fielderrors.forbidden(
                    "resourceVersionMatch",
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                )
            )
    if initial is not None:
        errors.append(
            fielderrors.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
        )
    return errors


def _watch_errors(match: str, initial: bool | None, token: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if initial is not None and match != NOT_OLDER_THAN:
        errors.append(
            fielderrors.forbidden(
                "resourceVersionMatch",
                f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}",
            )
        )
    if match:
        if initial is None:
            errors.append(
                fielderrors.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents "
                    "is provided",
                )
            )
        if match != NOT_OLDER_THAN:
            errors.append(
                fielderrors.not_supported("resourceVersionMatch", match, (NOT_OLDER_THAN,))
            )
        if token:
            errors.append(
                fielderrors.forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                )
            )
    return errors


def invalid_list_options(errors: list[FieldError]) -> ApiError:
    """errors.NewInvalid(meta.k8s.io/ListOptions, "", errs): the empty name is left out
    of the details, as the real Status omits empty fields."""
    details: dict[str, Any] = {
        "group": "meta.k8s.io",
        "kind": "ListOptions",
        "causes": [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors],
    }
    message = fielderrors.invalid_message("ListOptions", "meta.k8s.io", "", errors)
    return ApiError(422, "Invalid", message, details)
