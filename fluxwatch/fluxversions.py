"""The upstream helm-controller changes that bear on the stuck-release failure, in one table.

fluxwatch exists because helm-controller can leave an installed release at
``Ready=Unknown`` after losing its leader Lease mid-action (FLUX-FACTS §1).
Whether a cluster still needs it, and which of its steps work there, depends on
the helm-controller release that runs: ``forceAt`` appeared in one release, a
partial fix in another, a memory leak that costs the Lease came and went. Each
:class:`Change` names the first release it concerns, its dates, the pull request
or issue, what it changes for fluxwatch with and without it, and the public
sources it was read from (helm-controller's CHANGELOG, the pull requests' diffs,
the issues). ``fluxwatch doctor`` reads the running image's tag and reports each
row against it (:func:`applies`). Only what those sources say is here; where a
row draws a conclusion from a diff rather than from the project's words, its
text says "inference".

To add a row: a new helm-controller release that touches conditions, the
in-sync path, the reconcile annotations, leader election or the controller's
memory; keep :data:`CHANGES` ordered by version.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

Version = tuple[int, int, int]

REPO = "https://github.com/fluxcd/helm-controller"


def version_text(version: Version) -> str:
    return "v" + ".".join(str(n) for n in version)


class Kind(StrEnum):
    FIX = "fix"  # helps: present from `version` on
    REGRESSION = "regression"  # hurts: present from `version` until `fixed_in`
    REPORT = "report"  # an observation about the releases from `version` on


class Applies(StrEnum):
    IN = "in"  # the running release has it
    NOT_YET = "not-yet"  # the running release predates it
    FIXED = "fixed"  # a regression the running release no longer has


@dataclass(frozen=True, slots=True)
class Change:
    ref: str  # "helm-controller#1411", as people cite it (a report: the issue it was made on)
    kind: Kind
    version: Version  # the first helm-controller release it concerns
    released: str  # that release's date (a report: the date it was made), ISO 8601
    merged: str | None  # the pull request's merge date, when it is one
    upstream: str  # what changed (or was seen) upstream
    with_it: str  # what it means for fluxwatch where it applies
    without_it: str  # ... where it does not
    sources: tuple[str, ...]
    fixed_in: Version | None = None  # REGRESSION: the first release without it
    fixed_by: str | None = None  # REGRESSION: the change that removed it

    def span(self) -> str:
        """``v1.5.0``; for a regression ``v1.2.0 until v1.5.5``, the first release without it."""
        if self.fixed_in is None:
            return version_text(self.version)
        return f"{version_text(self.version)} until {version_text(self.fixed_in)}"


def applies(change: Change, running: Version) -> Applies:
    if running < change.version:
        return Applies.NOT_YET
    if change.fixed_in is not None and running >= change.fixed_in:
        return Applies.FIXED
    return Applies.IN


def _changelog(version: Version) -> str:
    return f"{REPO}/blob/{version_text(version)}/CHANGELOG.md"


LEADER_ELECTION_ID = Change(
    ref="helm-controller#239",
    kind=Kind.FIX,
    version=(0, 9, 0),
    released="2021-03-26",
    merged="2021-03-25",
    upstream=(
        "the leader-election Lease is named helm-controller-leader-election (it was "
        "5b6ca942.fluxcd.io), its lease, renew and retry durations become flags, and a "
        "clean shutdown releases the Lease (LeaderElectionReleaseOnCancel)"
    ),
    with_it=(
        "the lease monitor watches helm-controller-leader-election: leader changes, "
        "flapping and a leaderless controller are seen; doctor's leader-election check "
        "reads the durations' flags"
    ),
    without_it=(
        "the Lease has another name, so the lease monitor sees no leader change and no "
        "suspects; stuck releases are still found by their timers"
    ),
    sources=(f"{REPO}/pull/239", _changelog((0, 9, 0))),
)

NEW_RECONCILER = Change(
    ref="helm-controller#738",
    kind=Kind.FIX,
    version=(0, 37, 0),
    released="2023-12-12",
    merged="2023-11-24",
    upstream=(
        "the reworked reconciler decides from the release's state (in-sync, locked, ...) "
        "and unlocks a Helm release left pending-install/-upgrade/-rollback to failed, "
        "then retries it; the in-sync path that #1409 later found leaving Ready alone is "
        "this reconciler's (inference from code)"
    ),
    with_it=(
        "a release whose newest Helm revision is pending-* is not stuck: helm-controller "
        "unlocks it, so fluxwatch waits (up to verifyTimeout) instead of acting"
    ),
    without_it=(
        "nothing unlocks a pending-* release; fluxwatch still never acts on one, a person "
        "has to roll it back"
    ),
    sources=(f"{REPO}/pull/738", _changelog((0, 37, 0))),
)

FORCE_RESET_ANNOTATIONS = Change(
    ref="helm-controller#823",
    kind=Kind.FIX,
    version=(0, 37, 0),
    released="2023-12-12",
    merged="2023-12-01",
    upstream=(
        "the reconcile.fluxcd.io/forceAt and resetAt annotations (flux reconcile hr "
        "--force / --reset), acknowledged in status.lastHandledForceAt/ResetAt; a new "
        "forceAt makes an in-sync release run a Helm upgrade"
    ),
    with_it=(
        "the force-reconcile step (requestedAt and forceAt set to one token) runs an upgrade "
        "that writes Ready afresh, and the reset strategy's resetAt is honoured"
    ),
    without_it=(
        "forceAt and resetAt are ignored: force-reconcile is a plain requestedAt, which "
        "leaves the stuck shape, so the ladder goes on to suspend-toggle"
    ),
    sources=(f"{REPO}/pull/823", _changelog((0, 37, 0))),
)

ETCD_LEADER_RETRY = Change(
    ref="helm-controller#1084",
    kind=Kind.FIX,
    version=(1, 2, 0),
    released="2025-02-19",
    merged="2024-11-16",
    upstream=(
        "the Kubernetes client of Helm actions retries a request once when the API server "
        "answers 5xx 'etcdserver: leader changed' or 'raft proposal dropped'"
    ),
    with_it=(
        "fewer installs and upgrades fail outright in an etcd leader blip; those that still "
        "fail are the blip's other casualties (Ready=False, InstallFailed/UpgradeFailed)"
    ),
    without_it=(
        "an etcd leader change fails the Helm action at once: expect more releases left "
        "Ready=False (InstallFailed/UpgradeFailed) after a blip, beside the stuck ones"
    ),
    sources=(f"{REPO}/pull/1084", _changelog((1, 2, 0))),
)

RETRY_WRAPPER_LEAK = Change(
    ref="helm-controller#1485",
    kind=Kind.REGRESSION,
    version=(1, 2, 0),
    released="2025-02-19",
    merged=None,
    upstream=(
        "the Helm client's transport gains one more retry wrapper on every reconcile, so "
        "memory grows without bound (v1.5.5's CHANGELOG); the wrapping came with #1084 in "
        "v1.2.0 (inference from #1485's diff)"
    ),
    with_it=(
        "an OOM kill drops the leader Lease mid-install just as an API blip does: the memory "
        "check's advice matters more, and fluxwatch reports the restarts as LeaderChanged "
        "and recovers what they leave stuck; upgrade to v1.5.5 or later"
    ),
    without_it="no leak from the retry wrapper",
    sources=(
        f"{REPO}/pull/1485",
        f"{REPO}/pull/1487",
        _changelog((1, 5, 5)),
    ),
    fixed_in=(1, 5, 5),
    fixed_by="#1487 in v1.5.5 of 2026-05-20 (a backport of #1485, in v1.6.0 too)",
)

READY_UNKNOWN_EVERY_RECONCILE = Change(
    ref="helm-controller#1320",
    kind=Kind.REGRESSION,
    version=(1, 4, 0),
    released="2025-09-25",
    merged=None,
    upstream=(
        "every reconcile starts by writing Ready=Unknown (Progressing, 'Fulfilling "
        "prerequisites') before its dependencies are checked, and the releases that "
        "dependOn it go not-ready in turn (issue #1320; the write came with #1249)"
    ),
    with_it=(
        "Ready=Unknown is a moment of every reconcile here: each flip restarts a release's "
        "stuck timer, which runs from the condition's lastTransitionTime, so only a release "
        "that stays Unknown past the threshold is acted on"
    ),
    without_it="Ready goes Unknown only once a reconcile is past its prerequisites",
    sources=(f"{REPO}/issues/1320", f"{REPO}/pull/1323", _changelog((1, 4, 1))),
    fixed_in=(1, 4, 1),
    fixed_by="#1323 in v1.4.1 of 2025-10-06",
)

PARTIAL_FIX = Change(
    ref="helm-controller#1411",
    kind=Kind.FIX,
    version=(1, 5, 0),
    released="2026-02-20",
    merged="2026-02-17",
    upstream=(
        "fixes #1409 in part: an in-sync release that is not Ready or not Released gets "
        "Released and Ready rewritten True, but only when the Released reason is "
        "InstallFailed or UpgradeFailed (it widens #1369, same release, which set Released "
        "alone after an UpgradeFailed)"
    ),
    with_it=(
        "releases left Released=False with InstallFailed/UpgradeFailed heal at their next "
        "reconcile; the #1409 shape (Ready=Unknown/Progressing, no Released condition, "
        "history deployed) is left alone (inference from the diff), so fluxwatch still "
        "recovers it"
    ),
    without_it=(
        "an in-sync release never gets Ready rewritten, whatever its Released reason: "
        "fluxwatch's ladder (or flux reconcile hr --force by hand) is the way back; "
        "upgrade Flux"
    ),
    sources=(
        f"{REPO}/pull/1411",
        f"{REPO}/issues/1409",
        f"{REPO}/pull/1369",
        _changelog((1, 5, 0)),
    ),
)

SHAPE_AFTER_THE_FIX = Change(
    ref="helm-controller#1409",
    kind=Kind.REPORT,
    version=(1, 5, 0),
    released="2026-03-30",
    merged=None,
    upstream=(
        "the #1409 shape (Ready=Unknown, Progressing, \"Running 'install' action\", history "
        "deployed, an InstallSucceeded event) reported again after #1411, on 2 of 80 "
        "releases in one day; the reporter names 'helm-controller v1.8.3', a number no "
        "helm-controller release has (Flux v2.8.3 of 2026-03-16 ships helm-controller "
        "v1.5.3); no CHANGELOG entry up to v1.6.3 (2026-07-23) addresses it"
    ),
    with_it=(
        "the failure fluxwatch exists for is not fixed in this release: fluxwatch keeps "
        "watching, and recovers the shape with its ladder"
    ),
    without_it="this release predates #1411, so the #1409 shape is unfixed here anyway",
    sources=(
        f"{REPO}/issues/1409",
        "https://github.com/fluxcd/flux2/blob/v2.8.3/manifests/bases/helm-controller/"
        "kustomization.yaml",
        _changelog((1, 6, 3)),
    ),
)

CHANGES: tuple[Change, ...] = (
    LEADER_ELECTION_ID,
    NEW_RECONCILER,
    FORCE_RESET_ANNOTATIONS,
    ETCD_LEADER_RETRY,
    RETRY_WRAPPER_LEAK,
    READY_UNKNOWN_EVERY_RECONCILE,
    PARTIAL_FIX,
    SHAPE_AFTER_THE_FIX,
)


__all__ = [
    "CHANGES",
    "PARTIAL_FIX",
    "Applies",
    "Change",
    "Kind",
    "Version",
    "applies",
    "version_text",
]
