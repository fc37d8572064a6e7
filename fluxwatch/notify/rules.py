"""Alert rules: which events an Alert selects, and what it adds to them. Pure, no I/O.

Semantics follow notification-controller: ``eventSeverity: info`` selects
every event and ``error`` only errors; an event must match one of the
``eventSources`` (``kind`` and ``name`` take ``*`` globs, ``namespace``
defaults to any, ``matchLabels`` must all be on the object); when an
``inclusionList`` is set the message must match one of its regexes, and a
match in the ``exclusionList`` drops the event. ``eventMetadata`` and
``summary`` are added to the event's metadata without overriding its keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from fluxwatch.notify.config import AlertSpec, EventSource
from fluxwatch.notify.event import Event, Meta, Severity


def source_matches(source: EventSource, event: Event) -> bool:
    obj = event.involved_object
    if not fnmatchcase(obj.kind, source.kind) or not fnmatchcase(obj.name, source.name):
        return False
    if source.namespace and not fnmatchcase(obj.namespace, source.namespace):
        return False
    if source.api_version and source.api_version != obj.api_version:
        return False
    return all(event.labels.get(key) == value for key, value in source.match_labels.items())


@dataclass(frozen=True, slots=True)
class Rule:
    """An AlertSpec compiled: regexes built once, metadata merged once."""

    name: str
    provider: str
    errors_only: bool
    sources: tuple[EventSource, ...]
    inclusion: tuple[re.Pattern[str], ...]
    exclusion: tuple[re.Pattern[str], ...]
    metadata: Mapping[str, str]

    @classmethod
    def from_spec(cls, spec: AlertSpec) -> Rule:
        metadata = dict(spec.event_metadata)
        if spec.summary:
            metadata.setdefault(Meta.SUMMARY, spec.summary)
        return cls(
            name=spec.name,
            provider=spec.provider_ref.name,
            errors_only=spec.event_severity == "error",
            sources=tuple(spec.event_sources),
            inclusion=tuple(re.compile(p) for p in spec.inclusion_list),
            exclusion=tuple(re.compile(p) for p in spec.exclusion_list),
            metadata=metadata,
        )

    def matches(self, event: Event) -> bool:
        if self.errors_only and event.severity is not Severity.ERROR:
            return False
        if self.sources and not any(source_matches(s, event) for s in self.sources):
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
