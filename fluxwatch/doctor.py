"""``fluxwatch doctor``: is this cluster set up the way the incident taught (FLUX-FACTS §1, §5)?

Each check prints one line, ``pass``, ``warn`` or ``fail``, saying what was
found and what to change; the exit code is 1 when any check fails. The checks:

* ``api``: the API server answers, and serves HelmRelease ``v2`` (discovery of
  ``helm.toolkit.fluxcd.io``); fluxwatch reads no other version.
* ``leader-election``: the flags of helm-, kustomize- and source-controller
  (their Deployments in the Flux namespace) against the seed's advice, lease
  60s / renew 40s / retry 5s. Flux's defaults (35s/30s/5s) lose the Lease
  in a short API server blip, which is how HelmReleases get stuck. A warning
  when below the advice, a failure when client-go would refuse the values.
* ``memory``: those controllers' memory limits against the seed's advice
  (helm-controller 512Mi, the others 384Mi): an OOM kill mid-install drops the
  Lease just the same.
* ``version``: those controllers' versions, read from their images' tags;
  helm-controller before v1.5.0 lacks the partial upstream fix (#1411), a
  warning; from v1.5.0 on it has it, and the stuck shape was still reported
  after it (FLUX-FACTS §1), so fluxwatch stays useful either way.
* ``upstream``: one line per row of :mod:`fluxwatch.fluxversions` (the
  helm-controller changes that bear on this failure) against the running
  helm-controller: in it or not yet, a regression it has or is past, and what
  that means for fluxwatch. A missing fix and a present regression are
  warnings; an image without a version tag says that it cannot tell.
* ``rbac``: whether the current credentials may do what fluxwatch does, each
  asked with a request that changes nothing (``fluxwatch.kube.probe``); run it
  as fluxwatch's ServiceAccount for an answer about fluxwatch. What could not
  be asked is a warning, never a pass.
* ``notification-controller``: whether its event address answers HTTP; a
  failure only when a ``flux`` provider forwards events there.
* ``flux-ingress``: with a ``flux`` provider, whether the NetworkPolicies of
  the Flux namespace admit fluxwatch's pods to notification-controller's event
  port (9090). Flux's default ``allow-egress`` admits only pods of its own
  namespace; ``config/components/flux-events-ingress`` is the policy to add.

The checks are pure functions of what was read (tested without a cluster);
:func:`run_doctor` reads and calls them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fluxwatch.durations import parse_duration
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
from fluxwatch.kube.client import (
    EVENTS,
    HELMRELEASES,
    LEASES,
    SECRETS,
    KubeApiError,
    KubeClient,
    KubeError,
    Resource,
)
from fluxwatch.kube.probe import PROBE_NAME, Access, Probe, api_group, deployment, probe
from fluxwatch.notify.errors import DeliveryError
from fluxwatch.notify.providers.flux import DEFAULT_EVENTS_ADDRESS
from fluxwatch.notify.redact import origin
from fluxwatch.notify.transport import Endpoint, RetryPolicy, Transport
from fluxwatch.settings import Settings, leader_lease_name


class Level(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    level: Level
    message: str
    # What a program reading `doctor --output json` needs beyond the sentence.
    detail: Mapping[str, Any] | None = None


# -- leader election ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderElection:
    lease: float
    renew: float
    retry: float

    def __str__(self) -> str:
        return "/".join(_seconds(v) for v in (self.lease, self.renew, self.retry))


def _seconds(value: float) -> str:
    """As Flux's docs write these flags: ``60s``, ``2.5s``."""
    return f"{value:g}s"


FLAG_LEASE = "--leader-election-lease-duration"
FLAG_RENEW = "--leader-election-renew-deadline"
FLAG_RETRY = "--leader-election-retry-period"
FLAG_ENABLED = "--enable-leader-election"
FLUX_DEFAULTS = LeaderElection(35.0, 30.0, 5.0)
SEED_ADVICE = LeaderElection(60.0, 40.0, 5.0)
# client-go's leaderelection.JitterFactor: renewDeadline must exceed 1.2 x retryPeriod.
JITTER_FACTOR = 1.2

MI = 1024 * 1024
CONTROLLERS: Mapping[str, int] = {
    "helm-controller": 512 * MI,
    "kustomize-controller": 384 * MI,
    "source-controller": 384 * MI,
}
# fluxwatch exists for helm-controller; the others may be absent from a trimmed install.
REQUIRED_CONTROLLER = "helm-controller"


def manager_container(deploy: Mapping[str, Any]) -> Mapping[str, Any]:
    """Flux names its container ``manager``; else the first one."""
    containers = ((deploy.get("spec") or {}).get("template") or {}).get("spec", {}).get(
        "containers"
    ) or []
    for container in containers:
        if container.get("name") == "manager":
            return dict(container)
    return dict(containers[0]) if containers else {}


def flag_value(args: Sequence[str], name: str) -> str | None:
    """The last value of ``--name=value`` or ``--name value`` in ``args`` (the flag parser's
    rule: the last one wins); a bare boolean ``--name`` is ``"true"``."""
    found: str | None = None
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            found = arg[len(name) + 1 :]
        elif arg == name:
            following = args[i + 1] if i + 1 < len(args) else ""
            found = following if following and not following.startswith("-") else "true"
    return found


def check_leader_election(controller: str, deploy: Mapping[str, Any]) -> Finding:
    container = manager_container(deploy)
    args = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    check = "leader-election"
    enabled = flag_value(args, FLAG_ENABLED)
    if enabled is not None and enabled.lower() == "false":
        return Finding(
            check,
            Level.WARN,
            f"{controller}: {FLAG_ENABLED}=false: no leader election, so two replicas would "
            "both act; keep one replica or enable it",
        )
    values: list[float] = []
    defaulted: list[str] = []
    for name, default in zip(
        (FLAG_LEASE, FLAG_RENEW, FLAG_RETRY),
        (FLUX_DEFAULTS.lease, FLUX_DEFAULTS.renew, FLUX_DEFAULTS.retry),
        strict=True,
    ):
        raw = flag_value(args, name)
        if raw is None:
            values.append(default)
            defaulted.append(name)
            continue
        try:
            values.append(parse_duration(raw))
        except ValueError:
            return Finding(
                check, Level.FAIL, f"{controller}: {name}={raw!r} is not a duration like 60s"
            )
    have = LeaderElection(*values)
    source = " (Flux's defaults)" if len(defaulted) == 3 else ""
    if not have.lease > have.renew:
        return Finding(
            check,
            Level.FAIL,
            f"{controller}: lease {_seconds(have.lease)} must be longer than renew "
            f"{_seconds(have.renew)}; the controller refuses to start",
        )
    if not have.renew > JITTER_FACTOR * have.retry:
        return Finding(
            check,
            Level.FAIL,
            f"{controller}: renew {_seconds(have.renew)} must exceed "
            f"{JITTER_FACTOR} x retry {_seconds(have.retry)}; the controller refuses to "
            "start",
        )
    if have.lease >= SEED_ADVICE.lease and have.renew >= SEED_ADVICE.renew:
        return Finding(
            check, Level.PASS, f"{controller}: lease/renew/retry {have} (advice {SEED_ADVICE})"
        )
    fixes = []
    if have.lease < SEED_ADVICE.lease:
        fixes.append(f"{FLAG_LEASE}={_seconds(SEED_ADVICE.lease)}")
    if have.renew < SEED_ADVICE.renew:
        fixes.append(f"{FLAG_RENEW}={_seconds(SEED_ADVICE.renew)}")
    return Finding(
        check,
        Level.WARN,
        f"{controller}: lease/renew/retry {have}{source}, below the advised {SEED_ADVICE}: "
        f"an API server blip longer than the renew deadline costs the leader mid-install; "
        f"set {' '.join(fixes)}",
    )


# -- memory --------------------------------------------------------------------------------------

_QUANTITY = re.compile(
    r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
)
_SUFFIX = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
    "Pi": 1024.0**5,
    "Ei": 1024.0**6,
}


def parse_quantity(text: str) -> float:
    """A Kubernetes resource quantity (``512Mi``, ``1G``, ``1.5Gi``, ``268435456``)."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def _mebibytes(n: float) -> str:
    return f"{n / MI:g}Mi"


def check_memory(controller: str, deploy: Mapping[str, Any]) -> Finding:
    advised = CONTROLLERS[controller]
    limits = (manager_container(deploy).get("resources") or {}).get("limits") or {}
    raw = limits.get("memory")
    if raw is None:
        return Finding(
            "memory",
            Level.PASS,
            f"{controller}: no memory limit (advice: at least {_mebibytes(advised)})",
        )
    try:
        limit = parse_quantity(str(raw))
    except ValueError:
        return Finding("memory", Level.WARN, f"{controller}: memory limit {raw!r} is unreadable")
    if limit >= advised:
        return Finding(
            "memory",
            Level.PASS,
            f"{controller}: memory limit {raw} (advice: at least {_mebibytes(advised)})",
        )
    return Finding(
        "memory",
        Level.WARN,
        f"{controller}: memory limit {raw} is below the advised {_mebibytes(advised)}: an OOM "
        "kill drops the leader Lease mid-install just like an API server blip; raise "
        "resources.limits.memory",
    )


# -- versions ------------------------------------------------------------------------------------

# helm-controller#1411: an in-sync release whose Released reason is InstallFailed or
# UpgradeFailed gets Ready rewritten (FLUX-FACTS §1).
HELM_FIX_VERSION = PARTIAL_FIX.version
_SEMVER_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def image_version(image: str) -> Version | None:
    """The semantic version of an image's tag (``ghcr.io/fluxcd/x:v1.6.3``,
    ``...:v1.6.3@sha256:...``); None for a bare digest, ``latest`` or no tag."""
    ref = image.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:  # "host:5000/repo" has a port, not a tag
        return None
    match = _SEMVER_TAG.match(tag)
    if match is None:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def _image(deploy: Mapping[str, Any]) -> str:
    return str(manager_container(deploy).get("image") or "")


def check_version(controller: str, deploy: Mapping[str, Any]) -> Finding:
    image = _image(deploy)
    version = image_version(image)
    detail = {
        "controller": controller,
        "image": image,
        "version": None if version is None else version_text(version),
    }
    if version is None:
        return Finding(
            "version",
            Level.WARN,
            f"{controller}: cannot tell the version from image {image or '(none)'!r}; "
            "pin a release tag such as v1.6.3",
            detail,
        )
    shown = f"{controller} {version_text(version)}"
    if controller != REQUIRED_CONTROLLER:
        return Finding("version", Level.PASS, f"{shown} ({image})", detail)
    if version < HELM_FIX_VERSION:
        return Finding(
            "version",
            Level.WARN,
            f"{shown} predates {version_text(HELM_FIX_VERSION)}, the first with "
            "helm-controller#1411: after a lost Lease mid-release it never rewrites Ready; "
            "upgrade Flux, fluxwatch recovers such releases meanwhile",
            detail,
        )
    return Finding(
        "version",
        Level.PASS,
        f"{shown} has helm-controller#1411 ({version_text(HELM_FIX_VERSION)}), which "
        "covers failed releases only; the Ready=Unknown shape was reported after it, so "
        "fluxwatch still watches",
        detail,
    )


# -- upstream changes --------------------------------------------------------------------------


# How the running release stands against a change, as a verb: "helm-controller v1.4.1 lacks".
_VERBS: Mapping[tuple[Kind, Applies], str] = {
    (Kind.FIX, Applies.IN): "has",
    (Kind.FIX, Applies.NOT_YET): "lacks",
    (Kind.REGRESSION, Applies.IN): "has the regression",
    (Kind.REGRESSION, Applies.FIXED): "is past the regression",
    (Kind.REGRESSION, Applies.NOT_YET): "predates the regression",
    (Kind.REPORT, Applies.IN): "is among the releases of",
    (Kind.REPORT, Applies.NOT_YET): "predates",
}


def _when(change: Change) -> str:
    if change.kind is Kind.REGRESSION:
        return f"{change.span()}, fixed by {change.fixed_by}"
    if change.kind is Kind.REPORT:
        return f"reported {change.released}, on releases from {change.span()}"
    return f"{change.span()} of {change.released}"


def _row(change: Change, state: Applies | None) -> dict[str, Any]:
    """One row of the table as ``doctor --output json`` carries it."""
    return {
        "ref": change.ref,
        "kind": str(change.kind),
        "version": version_text(change.version),
        "released": change.released,
        "merged": change.merged,
        "fixedIn": None if change.fixed_in is None else version_text(change.fixed_in),
        "fixedBy": change.fixed_by,
        "applies": "unknown" if state is None else str(state),
        "upstream": change.upstream,
        "fluxwatch": {"withIt": change.with_it, "withoutIt": change.without_it},
        "sources": list(change.sources),
    }


def check_upstream(
    image: str, changes: Sequence[Change] = CHANGES, controller: str = REQUIRED_CONTROLLER
) -> list[Finding]:
    """Each upstream change against the helm-controller image that runs: a fix it lacks
    and a regression it has are warnings, the rest passes with what it means for
    fluxwatch; an image without a version tag gets one warning that says so."""
    version = image_version(image)
    if version is None:
        listed = ", ".join(f"{c.ref} ({c.span()})" for c in changes)
        return [
            Finding(
                "upstream",
                Level.WARN,
                f"{controller}: image {image or '(none)'!r} has no version tag, so which "
                f"upstream changes apply is unknown: {listed}; fluxwatch recovers the "
                "Ready=Unknown shape whichever release runs; pin a release tag to know",
                {"image": image, "running": None, "changes": [_row(c, None) for c in changes]},
            )
        ]
    found = []
    for change in changes:
        state = applies(change, version)
        hurts = (change.kind is Kind.FIX and state is Applies.NOT_YET) or (
            change.kind is Kind.REGRESSION and state is Applies.IN
        )
        effect = change.with_it if state is Applies.IN else change.without_it
        found.append(
            Finding(
                "upstream",
                Level.WARN if hurts else Level.PASS,
                f"{controller} {version_text(version)} {_VERBS[change.kind, state]} "
                f"{change.ref} ({_when(change)}): {change.upstream}; "
                f"fluxwatch: {effect} ({change.sources[0]})",
                {"image": image, "running": version_text(version), **_row(change, state)},
            )
        )
    return found


# -- the HelmRelease API -----------------------------------------------------------------------

HELM_GROUP = "helm.toolkit.fluxcd.io"
HELM_VERSION = "v2"


def check_api(doc: Mapping[str, Any] | None) -> Finding:
    if doc is None:
        return Finding(
            "api",
            Level.FAIL,
            f"{HELM_GROUP} is not served: no HelmRelease CRD; is Flux's helm-controller installed?",
        )
    served = [str(v.get("version")) for v in doc.get("versions") or ()]
    preferred = str((doc.get("preferredVersion") or {}).get("version") or "")
    listing = ", ".join(f"{v} (preferred)" if v == preferred else v for v in served) or "none"
    if HELM_VERSION not in served:
        return Finding(
            "api",
            Level.FAIL,
            f"HelmRelease {HELM_VERSION} is not served (served: {listing}); fluxwatch needs "
            "helm-controller v1.x, API helm.toolkit.fluxcd.io/v2",
        )
    return Finding("api", Level.PASS, f"HelmRelease API {HELM_GROUP}: served {listing}")


# -- permissions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Need:
    """One permission fluxwatch uses, why, and how bad it is to lack it."""

    verb: str
    res: Resource
    namespace: str | None
    why: str
    if_denied: Level = Level.FAIL
    subresource: str | None = None
    without: str = ""  # what happens without it, when that is not a failure
    name: str = PROBE_NAME  # the object, where RBAC grants the verb by resourceNames


def needs(settings: Settings) -> list[Need]:
    """The permissions these settings make fluxwatch use."""
    out: list[Need] = []
    scopes: list[str | None] = list(settings.watch.namespaces) or [None]
    leases_ns = settings.leases.namespace
    for ns in scopes:
        # A get or patch names one object, so it names a namespace: with all namespaces
        # watched, the Flux namespace stands for them (a ClusterRole grants it everywhere).
        one = ns or leases_ns
        out.append(Need("list", HELMRELEASES, ns, "the HelmRelease informer"))
        out.append(Need("watch", HELMRELEASES, ns, "the HelmRelease informer"))
        out.append(Need("get", HELMRELEASES, one, "re-reading a release after a 409"))
        out.append(Need("patch", HELMRELEASES, one, "force-reconcile and suspend-toggle"))
        if settings.recovery.status_correct and "status-correct" in settings.recovery.strategies:
            out.append(
                Need(
                    "patch",
                    HELMRELEASES,
                    one,
                    "status-correct (recovery.statusCorrect: true)",
                    subresource="status",
                    without="add config/components/status-correct",
                )
            )
        verify = settings.watch.verify_storage
        if verify != "never":
            always = verify == "always"
            out.append(
                Need(
                    "list",
                    SECRETS,
                    ns,
                    f"the Helm storage check (watch.verifyStorage: {verify})",
                    Level.FAIL if always else Level.WARN,
                    without="grant a Helm storage shape (fluxwatch rbac --helm-storage), "
                    "or status.history alone decides",
                )
            )
    out.append(Need("list", LEASES, leases_ns, "watching the Flux controllers' Leases"))
    out.append(Need("watch", LEASES, leases_ns, "watching the Flux controllers' Leases"))
    if settings.leader.enabled:
        own, lease = settings.leader.namespace, leader_lease_name(settings)
        why = "fluxwatch's own leader election"
        out.append(Need("get", LEASES, own, why, name=lease))
        out.append(Need("create", LEASES, own, why))
        out.append(Need("update", LEASES, own, why, name=lease))
    providers = [p for p in settings.notify.providers if not p.suspend]
    for secret in sorted({p.secret_ref.name for p in providers if p.secret_ref is not None}):
        out.append(
            Need(
                "get",
                SECRETS,
                settings.leader.namespace,
                f"providers' secretRef {secret}",
                name=secret,
            )
        )
    writer: tuple[str, Level, str] | None = None
    if any(p.type == "kubernetes-event" for p in providers):
        writer = ("the kubernetes-event provider", Level.FAIL, "")
    elif settings.events.record:
        writer = (
            "core/v1 Events on the objects they concern (events.record)",
            Level.WARN,
            "kubectl describe shows nothing of fluxwatch; or set events.record: false",
        )
    if writer is not None:
        why, level, without = writer
        # On the releases, on the Flux controllers' Leases, on fluxwatch's own Lease;
        # a repeat is a patch of the Event it repeats.
        places = {ns or leases_ns for ns in scopes} | {leases_ns, settings.leader.namespace}
        for ns in sorted(places):
            for verb in ("create", "patch"):
                out.append(Need(verb, EVENTS, ns, why, level, without=without))
    return out


def check_access(need: Need, answer: Probe) -> Finding:
    subject = f"{need.verb} {answer.resource} {answer.where}"
    if answer.access is Access.ALLOWED:
        return Finding("rbac", Level.PASS, f"may {subject} ({need.why})")
    if answer.access is Access.DENIED:
        fix = f"; {need.without}" if need.without else ""
        return Finding(
            "rbac",
            need.if_denied,
            f"may not {subject}, needed for {need.why}{fix} ({answer.detail})",
        )
    return Finding("rbac", Level.WARN, f"could not check {subject} ({need.why}): {answer.detail}")


# -- notification-controller --------------------------------------------------------------------


def events_address(settings: Settings, override: str | None = None) -> tuple[str, bool]:
    """Where notification-controller takes events, and whether fluxwatch forwards there."""
    flux = [p for p in settings.notify.providers if p.type == "flux" and not p.suspend]
    if override:
        return override, bool(flux)
    for spec in flux:
        if spec.address is not None:
            return spec.address.get_secret_value(), True
    return DEFAULT_EVENTS_ADDRESS, bool(flux)


async def check_events_address(
    address: str, forwarding: bool, transport: Transport, timeout: float = 5.0
) -> Finding:
    shown = origin(address)
    try:
        response = await transport.request(
            "GET",
            address,
            endpoint=Endpoint("notification-controller", timeout=timeout),
            passthrough=range(100, 600),
        )
    except DeliveryError as exc:
        level = Level.FAIL if forwarding else Level.WARN
        why = (
            "the flux provider forwards events there"
            if forwarding
            else "only the flux provider needs it; from outside the cluster it cannot resolve"
        )
        return Finding(
            "notification-controller", level, f"{shown} does not answer ({why}): {exc.message}"
        )
    return Finding(
        "notification-controller", Level.PASS, f"{shown} answers (HTTP {response.status})"
    )


# -- ingress into the Flux namespace ------------------------------------------------------------

NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies")
# notification-controller's event server: container port 9090, named http.
EVENTS_PORTS = (9090, "http")
NOTIFICATION_CONTROLLER_LABELS = {"app": "notification-controller"}
# The pod labels config/manager gives fluxwatch.
FLUXWATCH_POD_LABELS = {"app.kubernetes.io/name": "fluxwatch"}
INGRESS_COMPONENT = "config/components/flux-events-ingress"


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against ``labels``; an empty selector selects everything."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _admits(rule: Mapping[str, Any], namespace: str, pod_labels: Mapping[str, str]) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") in EVENTS_PORTS or "port" not in p for p in ports):
        return False
    peers = rule.get("from")
    if not peers:
        return True
    for peer in peers:
        if "ipBlock" in peer:
            continue
        ns_selector = peer.get("namespaceSelector")
        if ns_selector is None:
            continue  # a podSelector alone means pods of the policy's own namespace
        if _selects(ns_selector, {"kubernetes.io/metadata.name": namespace}) and _selects(
            peer.get("podSelector"), pod_labels
        ):
            return True
    return False


def check_flux_ingress(
    policies: Sequence[Mapping[str, Any]],
    *,
    flux_namespace: str,
    namespace: str,
    pod_labels: Mapping[str, str] = FLUXWATCH_POD_LABELS,
) -> Finding:
    """Do the Flux namespace's NetworkPolicies let fluxwatch's pods reach the event port?"""
    guarding = [
        p
        for p in policies
        if "Ingress" in (p.get("spec", {}).get("policyTypes") or ["Ingress"])
        and _selects(p.get("spec", {}).get("podSelector"), NOTIFICATION_CONTROLLER_LABELS)
    ]
    if not guarding:
        return Finding(
            "flux-ingress",
            Level.PASS,
            f"no NetworkPolicy in {flux_namespace} restricts ingress to notification-controller",
        )
    for policy in guarding:
        for rule in policy.get("spec", {}).get("ingress") or []:
            if _admits(rule, namespace, pod_labels):
                name = policy.get("metadata", {}).get("name", "")
                return Finding(
                    "flux-ingress",
                    Level.PASS,
                    f"NetworkPolicy {flux_namespace}/{name} admits fluxwatch's pods "
                    f"({namespace}) to notification-controller's event port",
                )
    names = ", ".join(sorted(p.get("metadata", {}).get("name", "") for p in guarding))
    return Finding(
        "flux-ingress",
        Level.FAIL,
        f"NetworkPolicies {names} in {flux_namespace} do not admit fluxwatch's pods "
        f"({namespace}) to notification-controller's event port 9090, so the flux provider's "
        f"events time out (Flux's allow-egress admits only pods of {flux_namespace}): "
        f"add {INGRESS_COMPONENT}",
    )


def _why(exc: KubeError) -> str:
    """An API error as the server put it: a 403's Status names the verb, the resource
    and the user, which is what the reader must grant."""
    if isinstance(exc, KubeApiError):
        return f"{exc.code} {exc.reason}: {exc.message}"
    return str(exc)


async def _flux_ingress(client: KubeClient, settings: Settings, flux_namespace: str) -> Finding:
    try:
        listed = await client.request("GET", NETWORKPOLICIES.path(flux_namespace))
    except KubeError as exc:
        return Finding(
            "flux-ingress",
            Level.WARN,
            f"cannot list NetworkPolicies in {flux_namespace} ({_why(exc)}); if Flux's "
            f"allow-egress policy is installed, the flux provider needs {INGRESS_COMPONENT}",
        )
    return check_flux_ingress(
        listed.get("items") or [],
        flux_namespace=flux_namespace,
        namespace=settings.leader.namespace,
    )


# -- running -------------------------------------------------------------------------------------


async def _controllers(client: KubeClient, namespace: str) -> list[Finding]:
    found: list[Finding] = []
    for controller in CONTROLLERS:
        try:
            deploy = await deployment(client, namespace, controller)
        except KubeError as exc:
            refused = isinstance(exc, KubeApiError) and exc.code in (401, 403)
            fix = (
                "run doctor with credentials that may get it (config/components/doctor "
                "grants fluxwatch that)"
                if refused
                else "run doctor again when the API server answers"
            )
            found.append(
                Finding(
                    "leader-election",
                    Level.WARN,
                    f"{controller}: cannot read Deployment {namespace}/{controller} "
                    f"({_why(exc)}); its flags and memory limit are not checked: {fix}",
                )
            )
            continue
        if deploy is None:
            level = Level.FAIL if controller == REQUIRED_CONTROLLER else Level.WARN
            message = f"no Deployment {namespace}/{controller}: is Flux installed in {namespace}?"
            found.append(Finding("leader-election", level, message))
            continue
        found.append(check_leader_election(controller, deploy))
        found.append(check_memory(controller, deploy))
        found.append(check_version(controller, deploy))
        if controller == REQUIRED_CONTROLLER:
            found.extend(check_upstream(_image(deploy)))
    return found


async def run_doctor(
    settings: Settings,
    client: KubeClient,
    *,
    flux_namespace: str | None = None,
    events_addr: str | None = None,
    transport: Transport | None = None,
) -> list[Finding]:
    """Every check, in the order printed."""
    try:
        version = await client.request("GET", "/version")
    except KubeError as exc:
        return [
            Finding("api", Level.FAIL, f"the API server at {client.host} does not answer: {exc}")
        ]
    findings = [
        Finding(
            "api", Level.PASS, f"API server {client.host}: Kubernetes {version.get('gitVersion')}"
        )
    ]
    try:
        findings.append(check_api(await api_group(client, HELM_GROUP)))
    except KubeError as exc:
        findings.append(Finding("api", Level.WARN, f"could not read discovery: {exc}"))
    findings.extend(await _controllers(client, flux_namespace or settings.leases.namespace))
    wanted = needs(settings)
    for done, need in enumerate(wanted, 1):
        answer = await probe(
            client,
            need.verb,
            need.res,
            need.namespace,
            subresource=need.subresource,
            name=need.name,
        )
        findings.append(check_access(need, answer))
        if answer.pushed_back:
            # A server that throttles or fails after the client's retries would do the
            # same to every other question: stop, and say the permissions are unknown.
            findings.append(
                Finding(
                    "rbac",
                    Level.FAIL,
                    f"the API server did not answer ({answer.detail}); "
                    f"{len(wanted) - done} more permission checks not run: "
                    "run doctor again when it answers",
                )
            )
            break
    address, forwarding = events_address(settings, events_addr)
    own = transport is None
    transport = transport or Transport(retry=RetryPolicy(max_retries=0))
    try:
        findings.append(await check_events_address(address, forwarding, transport))
    finally:
        if own:
            await transport.close()
    if forwarding:
        findings.append(
            await _flux_ingress(client, settings, flux_namespace or settings.leases.namespace)
        )
    return findings


def render(findings: Iterable[Finding]) -> str:
    findings = list(findings)
    width = max((len(f.check) for f in findings), default=0)
    lines = [f"{f.level.upper():4}  {f.check:<{width}}  {f.message}" for f in findings]
    counts = {level: sum(1 for f in findings if f.level is level) for level in Level}
    warnings = counts[Level.WARN]
    lines.append(
        f"{counts[Level.PASS]} passed, {warnings} warning{'' if warnings == 1 else 's'}, "
        f"{counts[Level.FAIL]} failed"
    )
    return "\n".join(lines)


def exit_code(findings: Iterable[Finding]) -> int:
    return 1 if any(f.level is Level.FAIL for f in findings) else 0


def as_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """``check``, ``level`` and ``message`` of each finding, and its ``detail`` if any."""
    out: list[dict[str, Any]] = []
    for f in findings:
        doc: dict[str, Any] = {"check": f.check, "level": str(f.level), "message": f.message}
        if f.detail is not None:
            doc["detail"] = dict(f.detail)
        out.append(doc)
    return out


__all__ = [
    "CONTROLLERS",
    "FLUX_DEFAULTS",
    "SEED_ADVICE",
    "Finding",
    "LeaderElection",
    "Level",
    "Need",
    "as_json",
    "check_access",
    "check_api",
    "check_events_address",
    "check_flux_ingress",
    "check_leader_election",
    "check_memory",
    "check_upstream",
    "check_version",
    "events_address",
    "exit_code",
    "flag_value",
    "image_version",
    "needs",
    "parse_quantity",
    "render",
    "run_doctor",
]
