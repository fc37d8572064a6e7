"""A person's approval of a refused incident: one annotation on fluxwatch's leader Lease.

``fluxwatch approve INCIDENT`` asks the API server who is asking (a
SelfSubjectReview, what ``kubectl auth whoami`` sends) and writes
``fluxwatch.io/approve.<incident>`` on the leader Lease, its value compact JSON
``{"by": ..., "at": ..., "token": ..., "reason": ...}``. Why the Lease: the
leader already reads and writes it every ``retryPeriod``, so whichever replica
leads sees the approval at its next renewal (``LeaderElector.annotations``)
with no new object, watch or daemon permission; and a merge patch of one key
cannot clobber the leader's own annotations, which the leader's renewals in turn
keep (they write back what they read). Why a token: the annotation is seen at
every renewal and by every new leader, and the token lets the tracker count one
approval once. Why ``by`` comes from the API server: it is who the request was
authenticated (or impersonated) as, not a name the person typed.

Parsing is pure and never raises: :func:`approvals` turns every annotation under
the prefix into an :class:`Approval` or a problem that names the key and what is
wrong, without echoing more than a short prefix of the value (anyone allowed to
patch the Lease can write there). No I/O here, so the engine may read approvals
too; the command's requests are in ``kube/approver.py``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

ANNOTATION_PREFIX = "fluxwatch.io/approve."
# Incident ids are the tracker's (``inc-20260127t184512``); read here as opaque. The id
# ends the annotation key's name part, which must end with a letter or digit and fit in
# 63 characters with "approve." before it.
INCIDENT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,39}[a-z0-9])?")
# An approval is a few hundred bytes; a bigger value was not written by the command.
MAX_VALUE = 4096
MAX_REASON = 1024
_SHOWN = 40  # characters of a malformed value quoted in a problem


class ApprovalError(ValueError):
    """An approval that cannot be written: the message says which part and why."""


def check_incident(incident: str) -> str:
    """``incident`` if it is an incident id; else :class:`ApprovalError` saying why."""
    if INCIDENT_ID.fullmatch(incident):
        return incident
    return _refuse_incident(incident)


def _refuse_incident(incident: str) -> str:
    shown = _show(incident)
    if not incident:
        why = "is empty"
    elif len(incident) > 41:
        why = f"is {len(incident)} characters long, at most 41 are allowed"
    elif incident.endswith("-"):
        why = "ends with '-'; it must end with a letter or digit"
    else:
        why = "must be lowercase letters, digits and '-', starting with a letter or digit"
    raise ApprovalError(
        f"incident {shown}: {why} (incident ids look like inc-20260127t184512, as "
        "fluxwatch's GuardrailTripped alert names them)"
    )


def annotation_key(incident: str) -> str:
    return ANNOTATION_PREFIX + check_incident(incident)


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's "yes, recover it" for one incident; ``at`` in seconds since the epoch."""

    incident: str
    by: str
    at: float
    token: str
    reason: str = ""

    @classmethod
    def new(cls, incident: str, by: str, at: float, reason: str = "") -> Approval:
        """A fresh approval with a new random token; :class:`ApprovalError` when a part
        is not one the leader would accept."""
        check_incident(incident)
        if not by:
            raise ApprovalError("the API server reported no user name for this request")
        if len(reason) > MAX_REASON:
            raise ApprovalError(
                f"--reason is {len(reason)} characters long, at most {MAX_REASON} are allowed"
            )
        approval = cls(incident, by, float(int(at)), secrets.token_urlsafe(16), reason)
        if len(approval.value()) > MAX_VALUE:
            raise ApprovalError(f"the user name {_show(by)} makes the annotation too long")
        return approval

    @property
    def key(self) -> str:
        return ANNOTATION_PREFIX + self.incident

    def value(self) -> str:
        """The annotation's value: compact JSON, keys in a fixed order."""
        doc: dict[str, str] = {"by": self.by, "at": rfc3339(self.at), "token": self.token}
        if self.reason:
            doc["reason"] = self.reason
        return orjson.dumps(doc).decode()


def approvals(annotations: Mapping[str, str]) -> tuple[list[Approval], list[str]]:
    """Every ``fluxwatch.io/approve.*`` annotation as an :class:`Approval`, and one problem
    per annotation that is not one (naming its key and what is wrong), in key order."""
    found: list[Approval] = []
    problems: list[str] = []
    for key in sorted(annotations):
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        try:
            found.append(_parse(key, annotations[key]))
        except ApprovalError as exc:
            problems.append(f"annotation {_show(key, 80)}: {exc}")
    return found, problems


def _parse(key: str, value: object) -> Approval:
    incident = key.removeprefix(ANNOTATION_PREFIX)
    check_incident(incident)
    if not isinstance(value, str):
        raise ApprovalError(f"value is a {type(value).__name__}, not a string")
    if len(value) > MAX_VALUE:
        raise ApprovalError(f"value is {len(value)} characters long, at most {MAX_VALUE}")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise ApprovalError(f"value is not JSON: {_show(value)}") from None
    if not isinstance(doc, dict):
        raise ApprovalError(f"value is JSON {type(doc).__name__}, not an object")
    by = _text(doc, "by", required=True)
    at = _time(_text(doc, "at", required=True))
    token = _text(doc, "token", required=True)
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,128}", token):
        raise ApprovalError(
            'field "token" must be 8 to 128 letters, digits, "-" or "_" '
            "(fluxwatch approve writes a new one each time)"
        )
    reason = _text(doc, "reason", required=False)
    if len(reason) > MAX_REASON:
        raise ApprovalError(
            f'field "reason" is {len(reason)} characters long, at most {MAX_REASON}'
        )
    return Approval(incident, by, at, token, reason)


def _text(doc: Mapping[str, Any], field: str, *, required: bool) -> str:
    value = doc.get(field)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        what = "is missing" if value is None else f"is a {type(value).__name__}, not a string"
        raise ApprovalError(f'field "{field}" {what}')
    if required and not value:
        raise ApprovalError(f'field "{field}" is empty')
    return value


def _time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ApprovalError(
            f'field "at" is not an RFC 3339 time with a zone, like 2026-01-27T18:45:12Z: '
            f"{_show(text)}"
        )
    return moment.timestamp()


def _show(text: str, limit: int = _SHOWN) -> str:
    """``text`` quoted, cut to ``limit`` characters: enough to find it, never all of it."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text)} characters)"
