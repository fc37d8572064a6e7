"""The table of upstream helm-controller changes (``fluxwatch.fluxversions``): its facts
as FLUX-FACTS §1 states them, every row sourced, and where a version stands.

FLUX-FACTS §1: PR #1411 (merged 2026-02-17, first in v1.5.0 of 2026-02-20) rewrites
Released/Ready for an in-sync release only when the Released reason is InstallFailed or
UpgradeFailed; the #1409 shape was reported again in a 2026-03-30 comment on #1409.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from fluxwatch import doctor
from fluxwatch.fluxversions import (
    CHANGES,
    PARTIAL_FIX,
    Applies,
    Change,
    Kind,
    Version,
    applies,
    version_text,
)

BY_REF = {(c.ref, c.kind): c for c in CHANGES}


def test_the_partial_fix_is_the_one_flux_facts_names() -> None:
    assert PARTIAL_FIX.ref == "helm-controller#1411"
    assert (PARTIAL_FIX.version, PARTIAL_FIX.released, PARTIAL_FIX.merged) == (
        (1, 5, 0),
        "2026-02-20",
        "2026-02-17",
    )
    assert "InstallFailed or UpgradeFailed" in PARTIAL_FIX.upstream
    assert PARTIAL_FIX.sources[0] == "https://github.com/fluxcd/helm-controller/pull/1411"
    # doctor's version check takes its threshold from the table, not a second constant.
    assert PARTIAL_FIX.version == doctor.HELM_FIX_VERSION


def test_the_shape_reported_after_the_fix_is_in_the_table() -> None:
    report = BY_REF["helm-controller#1409", Kind.REPORT]
    assert report.released == "2026-03-30"
    assert report.version == PARTIAL_FIX.version  # it concerns the releases that have #1411
    assert "v1.8.3" in report.upstream  # the number as the reporter wrote it
    assert "Ready=Unknown" in report.upstream


def test_force_and_reset_annotations_arrived_in_v0_37_0() -> None:
    """FLUX-FACTS §3: forceAt and resetAt, acknowledged in lastHandledForceAt/ResetAt."""
    change = BY_REF["helm-controller#823", Kind.FIX]
    assert change.version == (0, 37, 0)
    assert "forceAt" in change.upstream and "resetAt" in change.upstream


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.ref}-{c.kind}")
def test_every_row_is_dated_sourced_and_says_what_it_means_for_fluxwatch(
    change: Change,
) -> None:
    released = date.fromisoformat(change.released)
    if change.merged is not None:
        assert date.fromisoformat(change.merged) <= released
    assert change.sources, "a row without a source is a rumour"
    for source in change.sources:
        assert re.fullmatch(r"https://github\.com/fluxcd/(helm-controller|flux2)/\S+", source)
    # The first source is the pull request or issue the row is named after.
    number = change.ref.rpartition("#")[2]
    assert change.sources[0].endswith(("/pull/" + number, "/issues/" + number))
    assert change.upstream and change.with_it and change.without_it
    if change.kind is Kind.REGRESSION:
        assert change.fixed_in is not None and change.fixed_in > change.version
        assert change.fixed_by
    else:
        assert change.fixed_in is None and change.fixed_by is None


def test_rows_are_ordered_by_version() -> None:
    versions = [c.version for c in CHANGES]
    assert versions == sorted(versions)


@pytest.mark.parametrize(
    ("running", "state"),
    [((1, 4, 3), Applies.NOT_YET), ((1, 5, 0), Applies.IN), ((1, 6, 3), Applies.IN)],
)
def test_a_fix_applies_from_its_first_release(running: Version, state: Applies) -> None:
    assert applies(PARTIAL_FIX, running) is state


@pytest.mark.parametrize(
    ("running", "state"),
    [
        ((1, 1, 0), Applies.NOT_YET),
        ((1, 2, 0), Applies.IN),
        ((1, 5, 4), Applies.IN),
        ((1, 5, 5), Applies.FIXED),
        ((1, 6, 0), Applies.FIXED),
    ],
)
def test_a_regression_applies_until_the_release_that_fixed_it(
    running: Version, state: Applies
) -> None:
    leak = BY_REF["helm-controller#1485", Kind.REGRESSION]
    assert applies(leak, running) is state
    assert leak.span() == "v1.2.0 until v1.5.5"


def test_version_text() -> None:
    assert version_text((1, 5, 0)) == "v1.5.0"
