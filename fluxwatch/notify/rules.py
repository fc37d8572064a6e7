"""Alert rules: which events an Alert selects, and what it adds to them. Pure, no I/O.

Semantics follow notification-controller's event handler: ``eventSeverity:
info`` selects every event and ``error`` only errors; an event must match one
of the ``eventSources``: the same kind, the source's namespace (the Alert's
own when the source has none), the name or ``*``, and every ``matchLabels``
pair on the object; ``apiVersion`` is not compared. When an ``inclusionList``
is set the message must match one of its Go (RE2) regular expressions, and a
match in the ``exclusionList`` drops the event. Metadata is combined in
Flux's order (RFC 0008): ``eventMetadata``, then ``summary`` over it, then the
event's own keys over both.

fluxwatch's extensions (see ``config``): ``*`` globs in ``kind``, ``name`` and
``namespace``, and an alert without ``eventSources`` hears every event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from fluxwatch.notify.config import AlertSpec, EventSource, go_regexp
from fluxwatch.notify.event import Event, Meta, Severity


@dataclass(frozen=True, slots=True)
class Source:
    """An EventSource with its namespace resolved against the Alert's."""

    kind: str
    name: str
    namespace: str
    match_labels: Mapping[str, str]

    @classmethod
    def resolve(cls, alert: AlertSpec, source: EventSource) -> Source:
        return cls(
            kind=source.kind,
            name=source.name,
            namespace=alert.source_namespace(source),
            match_labels=dict(source.match_labels or {}),
        )

    def matches(self, event: Event) -> bool:
        obj = event.involved_object
        # An exact value has no glob characters (Kubernetes names cannot), so fnmatch
        # compares it exactly; '*' and other globs match as in fluxwatch's extension.
        if not fnmatchcase(obj.kind, self.kind) or not fnmatchcase(obj.name, self.name):
            return False
        if not fnmatchcase(obj.namespace, self.namespace):
            return False
        return all(event.labels.get(key) == value for key, value in self.match_labels.items())


@dataclass(frozen=True, slots=True)
class Rule:
    """An AlertSpec compiled: sources resolved, regexes built once, metadata merged once."""

    name: str
    provider: str
    errors_only: bool
    sources: tuple[Source, ...] | None
    inclusion: tuple[Any, ...]
    exclusion: tuple[Any, ...]
    metadata: Mapping[str, str]

    @classmethod
    def from_spec(cls, spec: AlertSpec) -> Rule:
        metadata = dict(spec.event_metadata)
        if spec.summary:
            metadata[Meta.SUMMARY] = spec.summary  # over eventMetadata.summary, as in Flux
        sources = (
            None
            if spec.event_sources is None
            else tuple(Source.resolve(spec, s) for s in spec.event_sources)
        )
        return cls(
            name=spec.name,
            provider=spec.provider_ref.name,
            errors_only=spec.event_severity == "error",
            sources=sources,
            inclusion=tuple(go_regexp(p) for p in spec.inclusion_list),
            exclusion=tuple(go_regexp(p) for p in spec.exclusion_list),
            metadata=metadata,
        )

    def matches(self, event: Event) -> bool:
        if self.errors_only and event.severity is not Severity.ERROR:
            return False
        if self.sources is not None and not any(s.matches(event) for s in self.sources):
            return False
        if self.inclusion and not any(p.search(event.message) for p in self.inclusion):
            return False
        return not any(p.search(event.message) for p in self.exclusion)

    def enhance(self, event: Event) -> Event:
        return event.with_metadata(self.metadata)


def route(rules: tuple[Rule, ...] | list[Rule], event: Event) -> dict[str, Event]:
    """Provider name -> the event as that provider gets it.

    A provider hears an event once even when several alerts select it for
    that provider; the first alert in configuration order shapes it.
    """
    targets: dict[str, Event] = {}
    for rule in rules:
        if rule.provider not in targets and rule.matches(event):
            targets[rule.provider] = rule.enhance(event)
    return targets
