"""Label and field selectors, parsed once into a predicate that is then run on every object.

The grammar, the matching and every error text follow k8s.io/apimachinery 0.32:
``labels.Parse`` (a byte lexer, then a recursive-descent parser whose messages name the
token found and the tokens expected) and ``fields.ParseSelector`` (comma terms, the first
operator splits a term, ``\\`` escapes in values). A bad selector is the client's
mistake (400). Which field labels a kind accepts is the kind's field label conversion:
built-in kinds with their own list (Secret, Namespace, Event, Service) say
``field label not supported``, the rest (Lease, ConfigMap, ...) only know
``metadata.name`` and ``metadata.namespace``, and a custom resource knows ``metadata.name``
plus ``metadata.namespace`` when it is namespaced; an unsupported label is refused rather
than silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fluxwatch.sim import fielderrors
from fluxwatch.sim.validation.rules import is_label_value, is_qualified_name

if TYPE_CHECKING:
    from fluxwatch.sim.resources import ResourceType

LabelPredicate = Callable[[Mapping[str, str]], bool]
ObjectPredicate = Callable[[Mapping[str, Any]], bool]

_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
# The kinds that register their own field label conversion (pkg/apis/core/v1/conversion.go);
# every other built-in kind has runtime.DefaultMetaV1FieldSelectorConversion.
FIELD_LABELS: dict[str, frozenset[str]] = {
    "secrets": frozenset({"type", "metadata.namespace", "metadata.name"}),
    # A Namespace has no namespace to select on.
    "namespaces": frozenset({"status.phase", "metadata.name"}),
    "services": frozenset({"metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"}),
    "events": frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        }
    ),
    "events.events.k8s.io": frozenset(
        {
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
            "metadata.namespace",
            "metadata.name",
        }
    ),
}


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message is what the API server would say."""


# ---- labels.Parse --------------------------------------------------------------------------

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")
_IDENT, _END = "identifier", "end"
_KEYWORDS = frozenset({"in", "notin"})
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_GO_INT_RE = re.compile(r"[+-]?[0-9]+")


def _lex(text: str) -> list[tuple[str, str]]:
    """(token, literal) pairs ending with the end token. A symbol token is its literal;
    the lexer is greedy, so ``!=`` and ``==`` are one token and ``=!`` two."""
    items: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            items.append((_END, ""))
            return items
        if text[i] in _SPECIAL:
            symbol = text[i : i + 2] if text[i : i + 2] in ("==", "!=") else text[i]
            items.append((symbol, symbol))
            i += len(symbol)
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in _WHITESPACE:
            j += 1
        word = text[i:j]
        items.append((word if word in _KEYWORDS else _IDENT, word))
        i = j


class _Requirement:
    """One requirement of a label selector, matched as labels.Requirement.Matches does."""

    __slots__ = ("key", "op", "values")

    def __init__(self, key: str, op: str, values: list[str]) -> None:
        self.key, self.op, self.values = key, op, values

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.op, self.key in labels
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("notin", "!="):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        value = labels[self.key]
        if op in ("in", "=", "=="):
            return value in self.values
        got, bound = _go_int(value), _go_int(self.values[0])
        if got is None or bound is None:
            return False
        return got > bound if op == ">" else got < bound


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), None where it fails."""
    if not _GO_INT_RE.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


class _LabelParser:
    """labels.Parser: ``in`` and ``notin`` are identifiers wherever values are read."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        return (_IDENT if values and tok in _KEYWORDS else tok), lit

    def consume(self, values: bool = True) -> tuple[str, str]:
        item = self.lookahead(values)
        self.pos += 1
        return item

    def parse(self) -> list[_Requirement]:
        requirements: list[_Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok == _END:
                return requirements
            if tok not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            tok, lit = self.consume()
            if tok == _END:
                return requirements
            if tok != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.lookahead()
            if tok not in (_IDENT, "!"):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> _Requirement:
        absent = False
        tok, key = self.consume()
        if tok == "!":
            absent = True
            tok, key = self.consume()
        if tok != _IDENT:
            raise SelectorError(f"found '{key}', expected: identifier")
        errs = is_qualified_name(key)
        if errs:
            # The parser's path is nil, which field.Path prints as <nil>.
            raise SelectorError(f"<nil>: {fielderrors.invalid_value('', key, '; '.join(errs))}")
        if absent or self.lookahead()[0] in (_END, ","):
            return _Requirement(key, "!" if absent else "exists", [])
        tok, lit = self.consume(values=False)
        if tok not in ("in", "notin", "=", "==", "!=", ">", "<"):
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        values = self.value_set() if tok in _KEYWORDS else self.exact_value()
        return _new_requirement(key, tok, sorted(values))

    def value_set(self) -> set[str]:
        tok, lit = self.consume()
        if tok != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok == ")":
            self.consume()
            return {""}
        if tok not in (_IDENT, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.consume()[0] != ")":
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma list of possibly empty values: ``(a,,b)``, ``(,a)``, ``(a,)``."""
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _IDENT:
                values.add(lit)
                nxt, nxt_lit = self.lookahead()
                if nxt == ")":
                    return values
                if nxt != ",":
                    raise SelectorError(f"found '{nxt_lit}', expected: ',' or ')'")
            elif tok == ",":
                if not values:
                    values.add("")
                nxt = self.lookahead()[0]
                if nxt == ")":
                    values.add("")
                    return values
                if nxt == ",":
                    self.consume()
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_END, ","):
            return {""}
        tok, lit = self.consume()
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return {lit}


def _new_requirement(key: str, op: str, values: list[str]) -> _Requirement:
    """labels.NewRequirement's checks of the values, reported together."""
    errors: list[fielderrors.FieldError] = []
    if op in (">", "<"):
        for i, value in enumerate(values):
            if _go_int(value) is None:
                errors.append(
                    fielderrors.invalid_value(
                        f"values[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    for i, value in enumerate(values):
        errs = is_label_value(value)
        if errs:
            errors.append(fielderrors.invalid_value(f"values[{i}][{key}]", value, "; ".join(errs)))
    if errors:
        raise SelectorError(fielderrors.aggregate(errors))
    return _Requirement(key, op, values)


def parse_label_selector(text: str | None) -> LabelPredicate | None:
    """Parse a label selector; None (match everything) for an empty one.

    ``key=v``, ``key==v``, ``key!=v``, ``key in (a,b)``, ``key notin (a,b)``, ``key``,
    ``!key``, ``key>n``, ``key<n``, joined by commas (AND). ``key in ()`` is the set
    of the empty value, as in apimachinery.
    """
    if not text:
        return None
    requirements = _LabelParser(text).parse()
    if not requirements:
        return None
    if len(requirements) == 1:
        return requirements[0].matches
    return lambda labels: all(r.matches(labels) for r in requirements)


# ---- fields.ParseSelector ------------------------------------------------------------------

FieldTerm = tuple[str, bool, str]  # (field label, negated, value)


def _split_terms(text: str) -> list[str]:
    """Comma-separated terms; an escaped comma stays in its term, backslash and all."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            # UnescapedRune prints the rune with %v: its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_terms(text: str | None) -> list[FieldTerm]:
    """The terms of a field selector, sorted as the parser sorts them; the label is taken
    as written (no trimming, no unescaping) and the first operator splits the term."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text or "")):
        if not part:
            continue
        for i in range(len(part)):
            op = next((o for o in ("!=", "==", "=") if part.startswith(o, i)), None)
            if op is not None:
                terms.append((part[:i], op == "!=", _unescape(part[i + len(op) :])))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    return terms


def check_field_labels(terms: list[FieldTerm], res: ResourceType) -> None:
    """The kind's field label conversion: SelectorError for the first label (in term
    order) it does not know."""
    if res.custom:
        supported = frozenset(
            {"metadata.name", "metadata.namespace"} if res.namespaced else {"metadata.name"}
        )
    else:
        supported = FIELD_LABELS.get(res.key, _METADATA_FIELDS)
    for label, _, _ in terms:
        if label in supported:
            continue
        if res.custom or res.key in FIELD_LABELS:
            raise SelectorError(f"field label not supported: {label}")
        raise SelectorError(
            f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"'
        )


def parse_field_selector(text: str | None, res: ResourceType) -> ObjectPredicate | None:
    """Parse a field selector for a kind; None (match everything) for an empty one."""
    terms = parse_field_terms(text)
    if not terms:
        return None
    check_field_labels(terms, res)
    getters = _EVENT_FIELDS if res.plural == "events" else {}
    preds = [
        _field_pred(getters.get(label) or _path_getter(label), value, negate=negate)
        for label, negate, value in terms
    ]
    if len(preds) == 1:
        return preds[0]
    return lambda o: all(p(o) for p in preds)


FieldGetter = Callable[[Mapping[str, Any]], str]


def _field_pred(getter: FieldGetter, value: str, *, negate: bool) -> ObjectPredicate:
    def pred(obj: Mapping[str, Any]) -> bool:
        return (getter(obj) == value) != negate

    return pred


def _path_getter(path: str) -> FieldGetter:
    parts = path.split(".")

    def getter(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for part in parts:
            if not isinstance(cur, Mapping):
                return ""
            cur = cur.get(part)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return getter


def _event_source(obj: Mapping[str, Any]) -> str:
    """An Event's ``source`` field: the source component, else the reporting controller
    (ToSelectableFields in pkg/registry/core/event)."""
    return str((obj.get("source") or {}).get("component") or obj.get("reportingComponent") or "")


# Event field labels that are not a path in the stored (core/v1) object.
_EVENT_FIELDS: dict[str, FieldGetter] = {"source": _event_source}


def field_selector_name(text: str | None) -> str | None:
    """The name pinned by ``metadata.name=<name>`` in a field selector, if any.

    RBAC uses it: a list or watch pinned to one name may be allowed by a rule
    that lists that name in ``resourceNames``.
    """
    try:
        terms = parse_field_terms(text)
    except SelectorError:
        return None
    for label, negate, value in terms:
        if label == "metadata.name" and not negate:
            return value
    return None
