"""The query of a LIST or WATCH read, defaulted and validated as kube-apiserver 1.32 does.

The API server decodes the query into ListOptions first: booleans the lenient way of
apimachinery's conversions (anything but "0" and "false" is true), integers with
strconv.ParseInt, and the label and field selectors parsed; a value it cannot decode is
a 400 with the decoder's words. Then it defaults them (with the WatchList feature, beta
and on in 1.32, a watch without a version, or from "0", becomes
``sendInitialEvents=true&resourceVersionMatch=NotOlderThan``), then validates them; a
violation is a 422 ``ListOptions.meta.k8s.io "" is invalid``. Which field labels the
kind supports is checked only after that. Reading both through one function keeps the
list and the watch path in step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxwatch.sim import fielderrors
from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.selectors import SelectorError, parse_field_terms, parse_label_selector
from fluxwatch.sim.store import ApiError, bad_request

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
_GO_INT_RE = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class ListOptions:
    resource_version: str  # "" when not given
    match: str  # resourceVersionMatch, "" when not given
    send_initial_events: bool | None  # None when not given (and not defaulted)
    allow_bookmarks: bool
    continue_token: str
    limit: int  # 0 when not given; not positive means no limit
    timeout_seconds: int | None  # None when not given

    @property
    def watch_list(self) -> bool:
        """A "watch-list" stream: initial events, then the bookmark that ends them."""
        return bool(self.send_initial_events) and self.allow_bookmarks


def query_flag(raw: str | None) -> bool | None:
    """A boolean query parameter as runtime.Convert_Slice_string_To_bool reads it: None
    when absent, False for "0" and any case of "false", True for anything else (the
    empty value included)."""
    if raw is None:
        return None
    return not (raw == "0" or raw.lower() == "false")


def _parse_int(query: Mapping[str, str], name: str) -> int | None:
    """strconv.ParseInt(raw, 10, 64); a present but empty value is no number either."""
    raw = query.get(name)
    if raw is None:
        return None
    if not _GO_INT_RE.fullmatch(raw):
        raise bad_request(f"strconv.ParseInt: parsing {json.dumps(raw)}: invalid syntax")
    value = int(raw)
    if not -(2**63) <= value < 2**63:
        raise bad_request(f"strconv.ParseInt: parsing {json.dumps(raw)}: value out of range")
    return value


def list_options(query: Mapping[str, str], *, watch: bool) -> ListOptions:
    """The defaulted ListOptions of a request: ApiError 400 for a parameter that does not
    decode, 422 for a forbidden combination."""
    rv = query.get("resourceVersion") or ""
    match = query.get("resourceVersionMatch") or ""
    initial = query_flag(query.get("sendInitialEvents"))
    bookmarks = bool(query_flag(query.get("allowWatchBookmarks")))
    timeout = _parse_int(query, "timeoutSeconds")
    limit = _parse_int(query, "limit") or 0
    token = query.get("continue") or ""
    try:
        parse_label_selector(query.get("labelSelector"))
        parse_field_terms(query.get("fieldSelector"))
    except SelectorError as err:
        raise bad_request(str(err)) from None
    # SetListOptionsDefaults with the WatchList feature on.
    if watch and initial is None and not match and rv in ("", "0"):
        initial, match = True, NOT_OLDER_THAN
    errors = (
        _watch_errors(match, initial, token) if watch else _list_errors(rv, match, initial, token)
    )
    if errors:
        raise invalid_list_options(errors)
    return ListOptions(rv, match, initial, bookmarks, token, limit, timeout)


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
