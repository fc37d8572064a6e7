"""The engine's own settings: small frozen dataclasses with the documented defaults.

The daemon's settings tree (pydantic-settings, ``fluxwatch/settings.py``)
validates straight into the guardrail and lease dataclasses (``Duration``
fields take ``"10m"`` there and are plain floats here), so the engine never
reads the environment or a file and its tests build settings with plain
constructors. Every value is
checked when constructed; an error names the field, the value and what was
expected.

Scope uses a Kubernetes label selector (``team=a,tier in (web,api),!legacy``),
parsed once here into :class:`LabelSelector`; ``str(selector)`` gives the
canonical text to send as ``labelSelector`` so the API server and the policy
filter by the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from fluxwatch.durations import Duration

__all__ = [
    "DEFAULT_LEASE_NAMES",
    "EngineSettings",
    "GuardrailSettings",
    "LabelSelector",
    "LeaseSettings",
    "Requirement",
    "VerifyStorage",
]

DEFAULT_LEASE_NAMES = (
    "helm-controller-leader-election",
    "kustomize-controller-leader-election",
    "source-controller-leader-election",
    "notification-controller-leader-election",
)


class VerifyStorage(StrEnum):
    """Whether "deployed" must also be confirmed by Helm's release Secrets (FLUX-FACTS §4)."""

    AUTO = "auto"  # confirm when the Secrets are readable, trust history[0] otherwise
    ALWAYS = "always"  # never act without reading the Secrets
    NEVER = "never"  # history[0] alone decides; no Secret is read


def _positive(owner: str, name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{owner}.{name}: expected a positive number, got {value!r}")


def _at_least(owner: str, name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}.{name}: expected an integer >= {low}, got {value!r}")


@dataclass(frozen=True, slots=True)
class GuardrailSettings:
    """Count first, then act: batch limit, sliding budget, per-release attempts."""

    max_batch: int = 10  # more stuck at once than this: act on none
    # "At once": a release acted on still counts for this long, so an incident whose
    # releases cross the threshold a few seconds apart is still seen as one burst.
    batch_window: Duration = 60.0
    # Releases whose Ready went Unknown within this long of an incident's first are
    # counted (and approved) as that one incident (engine.incidents).
    incident_window: Duration = 600.0
    max_recoveries: int = 10  # at most this many actions ...
    window: Duration = 600.0  # ... per sliding window of this many seconds
    max_attempts: int = 3  # per release, until it is Ready again
    backoff_base: Duration = 60.0  # wait after the first failed attempt
    backoff_factor: float = 2.0
    backoff_max: Duration = 1800.0
    dry_run: bool = False  # decide and alert, never write

    def __post_init__(self) -> None:
        _at_least("guardrail", "max_batch", self.max_batch, 1)
        _at_least("guardrail", "max_recoveries", self.max_recoveries, 1)
        _at_least("guardrail", "max_attempts", self.max_attempts, 1)
        _positive("guardrail", "window", self.window)
        if not self.batch_window >= 0:
            raise ValueError(
                f"guardrail.batch_window: expected a duration >= 0, got {self.batch_window!r}"
            )
        if not self.incident_window >= 0:
            raise ValueError(
                f"guardrail.incident_window: expected a duration >= 0, got {self.incident_window!r}"
            )
        _positive("guardrail", "backoff_base", self.backoff_base)
        _positive("guardrail", "backoff_max", self.backoff_max)
        if not self.backoff_factor >= 1:
            raise ValueError(
                f"guardrail.backoff_factor: expected a number >= 1, got {self.backoff_factor!r}"
            )

    def backoff(self, failed_attempts: int) -> float:
        """Seconds to wait before the next attempt after ``failed_attempts`` (>= 1) attempts."""
        delay = self.backoff_base * self.backoff_factor ** (failed_attempts - 1)
        return min(delay, self.backoff_max)


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """Which Flux controller Leases to watch and when their behaviour is alarming."""

    namespace: str = "flux-system"
    # With --watch-label-selector Flux appends -<8 hex>; such names match too (FLUX-FACTS §5).
    names: tuple[str, ...] = DEFAULT_LEASE_NAMES
    flap_threshold: int = 3  # more leader changes than this ...
    flap_window: Duration = 600.0  # ... within this many seconds is flapping
    # Beyond leaseDurationSeconds without the Lease changing. A failover after a lost Lease
    # is client-go's: the old leader gives up at its renew deadline (Flux 30s, 40s
    # mitigated) and exits, its pod restarts, and the new process waits a full lease
    # duration from its first look, plus up to 1.2 retry periods: the Lease stands still
    # for the renew deadline, a restart and ~6s beyond its duration. 60s covers that
    # without hiding an outage (30s raised ControllerLeaderless on every such failover).
    grace: Duration = 60.0
    # How long a leader change makes the releases that were Ready=Unknown at that moment
    # suspects: longer than the stuck threshold plus the first retries.
    suspect_ttl: Duration = 900.0

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("leases.namespace: expected a namespace, got ''")
        if not self.names or not all(self.names):
            raise ValueError(f"leases.names: expected Lease names, got {self.names!r}")
        _at_least("leases", "flap_threshold", self.flap_threshold, 1)
        _positive("leases", "flap_window", self.flap_window)
        _positive("leases", "suspect_ttl", self.suspect_ttl)
        if not self.grace >= 0:
            raise ValueError(f"leases.grace: expected a number >= 0, got {self.grace!r}")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: str  # one of "in", "notin", "=", "!=", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.op
        if op == "exists":
            return value is not None
        if op == "!":
            return value is None
        if op in ("=", "in"):
            return value is not None and value in self.values
        # "!=" and "notin" match objects without the label, as in Kubernetes.
        return value is None or value not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("=", "!="):
            return f"{self.key}{self.op}{next(iter(self.values))}"
        return f"{self.key} {self.op} ({','.join(sorted(self.values))})"


# One term: "!key" | "key" | "key=v" | "key==v" | "key!=v" | "key in (a,b)" | "key notin (a,b)".
_TERM = re.compile(
    r"\s*(?:"
    r"!\s*(?P<absent>[^\s,=!()]+)"
    r"|(?P<setkey>[^\s,=!()]+)\s+(?P<setop>in|notin)\s*\((?P<set>[^()]*)\)"
    r"|(?P<key>[^\s,=!()]+)\s*(?:(?P<op>==|=|!=)\s*(?P<value>[^\s,=!()]*))?"
    r")\s*(?:,|$)"
)


# The API server checks every key and value of a selector (labels.Parse): one it would
# refuse must be refused here, or the daemon starts and every list of it is a 400.
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _key_problem(key: str) -> str | None:
    """Why ``key`` is not a label key (IsQualifiedName), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return "the prefix before '/' must be a lowercase DNS subdomain of at most 253 characters"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            "the name must be at most 63 alphanumeric characters, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )
    return None


def _value_problem(value: str) -> str | None:
    """Why ``value`` is not a label value (IsValidLabelValue; empty is one), or None."""
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return (
            "a value must be empty or at most 63 alphanumeric characters, '-', '_' or '.', "
            "starting and ending with an alphanumeric character"
        )
    return None


def _checked(text: str, req: Requirement) -> Requirement:
    problem = _key_problem(req.key)
    if problem:
        raise ValueError(f"label selector {text!r}: key {req.key!r} is not a label key: {problem}")
    for value in sorted(req.values):
        problem = _value_problem(value)
        if problem:
            raise ValueError(
                f"label selector {text!r}: value {value!r} of {req.key!r} is not a label value: "
                f"{problem}"
            )
    return req


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed Kubernetes label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the ``labelSelector`` syntax; ValueError names the part that is wrong."""
        reqs: list[Requirement] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TERM.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(
                    f"label selector {text!r}: cannot read the term at {text[pos:]!r}; expected "
                    "key, !key, key=value, key!=value, key in (a,b) or key notin (a,b)"
                )
            pos = m.end()
            if m["absent"]:
                req = Requirement(m["absent"], "!")
            elif m["setkey"]:
                # As apimachinery's parser reads a set: "()" and an empty element (the
                # one of "(web,)" or "(,)") are the empty value, which the API server
                # selects by; dropping them would judge other releases than it sends.
                values = frozenset(v.strip() for v in m["set"].split(","))
                req = Requirement(m["setkey"], m["setop"], values)
            elif m["op"]:
                op = "=" if m["op"] == "==" else m["op"]
                req = Requirement(m["key"], op, frozenset((m["value"],)))
            else:
                req = Requirement(m["key"], "exists")
            reqs.append(_checked(text, req))
            if text[pos - 1 : pos] == "," and pos == len(text):
                raise ValueError(f"label selector {text!r}: ends with a comma")
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Detection, scope, guardrail and lease settings with the documented defaults."""

    threshold: Duration = 300.0  # seconds of Ready=Unknown before a deployed release is stuck
    verify_storage: VerifyStorage = VerifyStorage.AUTO
    watch_namespaces: frozenset[str] = frozenset()  # empty: every namespace
    exclude_namespaces: frozenset[str] = frozenset()
    label_selector: LabelSelector = LabelSelector()
    guardrail: GuardrailSettings = field(default_factory=GuardrailSettings)
    leases: LeaseSettings = field(default_factory=LeaseSettings)

    def __post_init__(self) -> None:
        _positive("engine", "threshold", self.threshold)
        # Accept a plain string from hand-written settings; the enum is what the code compares.
        object.__setattr__(self, "verify_storage", VerifyStorage(self.verify_storage))
        both = self.watch_namespaces & self.exclude_namespaces
        if both:
            raise ValueError(
                f"engine.exclude_namespaces: {sorted(both)} are also in watch_namespaces; "
                "a namespace is either watched or excluded"
            )

    def in_scope(self, namespace: str, labels: Mapping[str, str]) -> bool:
        if self.watch_namespaces and namespace not in self.watch_namespaces:
            return False
        if namespace in self.exclude_namespaces:
            return False
        # Checked per watch event: skip the generator when there is no selector.
        return not self.label_selector or self.label_selector.matches(labels)
