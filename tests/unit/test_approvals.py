"""Approvals on the leader Lease: incident ids, the annotation the command writes, and
parsing every ``fluxwatch.io/approve.*`` annotation without ever raising."""

from __future__ import annotations

import orjson
import pytest

from fluxwatch.kube.approvals import (
    ANNOTATION_PREFIX,
    MAX_REASON,
    Approval,
    ApprovalError,
    annotation_key,
    approvals,
    check_incident,
)

INCIDENT = "inc-20260127t184512"
AT = 1769539512.0  # 2026-01-27T18:45:12Z
KEY = ANNOTATION_PREFIX + INCIDENT
GOOD = '{"by":"alice","at":"2026-01-27T18:45:12Z","token":"tok-0123456789"}'


@pytest.mark.parametrize("incident", [INCIDENT, "a", "0", "inc-1", "x" * 41])
def test_incident_ids_are_accepted(incident: str) -> None:
    assert check_incident(incident) == incident
    assert annotation_key(incident) == f"fluxwatch.io/approve.{incident}"


@pytest.mark.parametrize(
    ("incident", "why"),
    [
        ("", "is empty"),
        ("Inc-1", "lowercase letters, digits and '-'"),
        ("-inc", "starting with a letter or digit"),
        ("inc_1", "lowercase letters"),
        ("inc.1", "lowercase letters"),
        ("inc/1", "lowercase letters"),
        ("inc-", "ends with '-'"),
        ("x" * 42, "42 characters long, at most 41"),
    ],
)
def test_a_bad_incident_id_is_refused_saying_why(incident: str, why: str) -> None:
    with pytest.raises(ApprovalError) as info:
        check_incident(incident)
    assert why in str(info.value)
    assert str(info.value).startswith(f"incident {incident[:40]!r}")
    assert "inc-20260127t184512" in str(info.value), "the message shows what an id looks like"


def test_the_longest_id_still_makes_a_valid_annotation_key() -> None:
    """The key's name part (after the ``/``) is at most 63 characters, as Kubernetes says."""
    name = annotation_key("x" * 41).split("/", 1)[1]
    assert len(name) <= 63


def test_a_new_approval_is_one_compact_json_value_with_a_fresh_token() -> None:
    first = Approval.new(INCIDENT, "alice", AT + 0.7, "blip at 18:45")
    again = Approval.new(INCIDENT, "alice", AT, "blip at 18:45")
    assert first.key == KEY
    assert first.token != again.token
    assert orjson.loads(first.value()) == {
        "by": "alice",
        "at": "2026-01-27T18:45:12Z",
        "token": first.token,
        "reason": "blip at 18:45",
    }
    assert " " not in first.value().replace("blip at 18:45", "")  # compact
    assert "reason" not in Approval.new(INCIDENT, "alice", AT).value()
    # What the command writes is what the leader reads back.
    assert approvals({first.key: first.value()}) == ([first], [])


def test_a_new_approval_refuses_what_the_leader_would_not_accept() -> None:
    with pytest.raises(ApprovalError, match="incident 'INC'"):
        Approval.new("INC", "alice", AT)
    with pytest.raises(ApprovalError, match="no user name"):
        Approval.new(INCIDENT, "", AT)
    with pytest.raises(ApprovalError, match=f"--reason is {MAX_REASON + 1} characters"):
        Approval.new(INCIDENT, "alice", AT, "r" * (MAX_REASON + 1))
    with pytest.raises(ApprovalError, match="user name 'uuu"):
        Approval.new(INCIDENT, "u" * 5000, AT)


def test_parsing_reads_every_approval_and_leaves_other_annotations_alone() -> None:
    other = '{"by":"bob","at":"2026-01-27T19:00:00+01:00","token":"abcdefgh","reason":"ok"}'
    found, problems = approvals(
        {
            KEY: GOOD,
            "fluxwatch.io/approve.inc-2": other,
            "fluxwatch.io/guardrail": "{not an approval}",
            "fluxwatch.io/approved": "no dot: not under the prefix",
        }
    )
    assert problems == []
    assert found == [
        Approval("inc-2", "bob", AT - 45 * 60 - 12, "abcdefgh", "ok"),
        Approval(INCIDENT, "alice", AT, "tok-0123456789", ""),
    ]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (ANNOTATION_PREFIX, GOOD, "incident '': is empty"),
        (ANNOTATION_PREFIX + "INC", GOOD, "incident 'INC': must be lowercase"),
        (KEY, "yes", "value is not JSON: 'yes'"),
        (KEY, "[1, 2]", "value is JSON list, not an object"),
        (KEY, '{"at":"2026-01-27T18:45:12Z","token":"tok-0123456789"}', 'field "by" is missing'),
        (KEY, GOOD.replace('"alice"', "7"), 'field "by" is a int, not a string'),
        (KEY, GOOD.replace('"alice"', '""'), 'field "by" is empty'),
        (KEY, GOOD.replace("2026-01-27T18:45:12Z", "yesterday"), "not an RFC 3339 time"),
        (KEY, GOOD.replace("18:45:12Z", "18:45:12"), "with a zone, like 2026-01-27T18:45:12Z"),
        (KEY, GOOD.replace("tok-0123456789", "short"), 'field "token" must be 8 to 128'),
        (KEY, GOOD.replace("tok-0123456789", "has space!"), 'field "token" must be'),
        (KEY, GOOD[:-1] + ',"reason":false}', 'field "reason" is a bool, not a string'),
        (
            KEY,
            GOOD[:-1] + ',"reason":"' + "r" * (MAX_REASON + 1) + '"}',
            f'field "reason" is {MAX_REASON + 1} characters long',
        ),
        (KEY, "x" * 5000, "value is 5000 characters long, at most 4096"),
    ],
)
def test_a_malformed_approval_is_a_problem_naming_its_key(
    key: str, value: str, problem: str
) -> None:
    found, problems = approvals({key: value, "fluxwatch.io/approve.inc-ok": GOOD})
    assert [a.incident for a in found] == ["inc-ok"], "one bad annotation spoils no other"
    [line] = problems
    assert line.startswith(f"annotation {key!r}: "), line
    assert problem in line, line


def test_a_problem_never_echoes_a_long_value() -> None:
    secretish = "s3cr3t-" * 100
    _, problems = approvals({KEY: secretish, ANNOTATION_PREFIX + secretish[:60]: GOOD})
    assert len(problems) == 2
    for line in problems:
        assert secretish[:100] not in line
        assert len(line) < 400, line
    assert "characters)" in problems[1]
