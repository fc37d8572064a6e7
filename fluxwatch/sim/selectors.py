"""Label and field selectors, parsed once into a predicate that is then run on every object.

The grammar and the error cases follow k8s.io/apimachinery's ``labels.Parse`` and
``fields.ParseSelector``: a bad selector is the client's mistake (400), and an
unsupported field label is refused rather than silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

LabelPredicate = Callable[[Mapping[str, str]], bool]
ObjectPredicate = Callable[[Mapping[str, Any]], bool]

# Field labels every resource supports; extra ones per resource key (the real
# server registers them per type, CRDs get only the two metadata fields).
COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
EXTRA_FIELDS: dict[str, frozenset[str]] = {
    "secrets": frozenset({"type"}),
    "namespaces": frozenset({"status.phase"}),
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
        }
    ),
}

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME)
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SPECIAL = "!=(),<>"


class SelectorError(ValueError):
    """A selector that cannot be parsed; the message is what the API server would say."""


def label_key_error(key: str) -> str | None:
    """Why ``key`` is not a valid label key (qualified name), or None when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix)):
        return f"prefix part of {key!r} must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not _NAME_RE.fullmatch(name):
        return (
            f"name part of {key!r} must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (at most 63 characters)"
        )
    return None


def label_value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is (empty is valid)."""
    if value == "":
        return None
    if len(value) > 63 or not _NAME_RE.fullmatch(value):
        return (
            f"a valid label value {value!r} must be 63 characters or less and must be empty "
            "or begin and end with an alphanumeric character"
        )
    return None


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "=!" and i + 1 < n and text[i + 1] == "=":
            tokens.append(c + "=")
            i += 2
        elif c in _SPECIAL:
            tokens.append(c)
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


def _is_word(tok: str | None) -> bool:
    return tok is not None and tok not in _SPECIAL and tok not in ("==", "!=")


def parse_label_selector(text: str | None) -> LabelPredicate | None:
    """Parse a label selector; None (match everything) for an empty one.

    Supports ``=``/``==``/``!=``, ``in (..)``, ``notin (..)``, ``key``, ``!key``,
    ``key>n``/``key<n`` and commas as AND.
    """
    if text is None or not text.strip():
        return None
    toks = _tokenize(text)
    pos = 0
    preds: list[LabelPredicate] = []

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str | None:
        nonlocal pos
        tok = peek()
        pos += 1
        return tok

    def word(what: str) -> str:
        tok = take()
        if not _is_word(tok):
            raise SelectorError(
                f"unable to parse requirement: found {tok!r}, expected: {what} in {text!r}"
            )
        assert tok is not None
        return tok

    def check_key(key: str) -> str:
        err = label_key_error(key)
        if err:
            raise SelectorError(f'unable to parse requirement: key: Invalid value: "{key}": {err}')
        return key

    def check_value(value: str) -> str:
        err = label_value_error(value)
        if err:
            raise SelectorError(
                f'unable to parse requirement: values[0]: Invalid value: "{value}": {err}'
            )
        return value

    while True:
        if peek() == "!":
            take()
            key = check_key(word("identifier"))
            preds.append(_label_pred(key, "absent"))
        else:
            key = check_key(word("identifier"))
            op = peek()
            if op is None or op == ",":
                preds.append(_label_pred(key, "present"))
            elif op in ("=", "==", "!="):
                take()
                nxt = peek()
                value = check_value(take() or "") if _is_word(nxt) else ""
                if op == "!=":
                    preds.append(_label_pred(key, "!=", frozenset((value,))))
                else:
                    preds.append(_label_pred(key, "in", frozenset((value,))))
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise SelectorError(f"unable to parse requirement: expected '(' in {text!r}")
                values: set[str] = set()
                while True:
                    tok = take()
                    if tok == ")":
                        break
                    if tok == ",":
                        continue
                    if not _is_word(tok):
                        raise SelectorError(
                            f"unable to parse requirement: found {tok!r}, expected ')' in {text!r}"
                        )
                    assert tok is not None
                    values.add(check_value(tok))
                if not values:
                    raise SelectorError(
                        f"unable to parse requirement: for 'in', 'notin' operators, "
                        f"values set can't be empty in {text!r}"
                    )
                frozen = frozenset(values)
                if op == "in":
                    preds.append(_label_pred(key, "in", frozen))
                else:
                    preds.append(_label_pred(key, "!=", frozen))
            elif op in ("<", ">"):
                take()
                raw = word("integer")
                try:
                    bound = int(raw)
                except ValueError:
                    raise SelectorError(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                        f"be an integer: {raw!r}"
                    ) from None
                preds.append(_compare(key, bound, greater=op == ">"))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found {op!r}, expected: "
                    f"'=', '!=', '==', 'in', notin' in {text!r}"
                )
        sep = take()
        if sep is None:
            break
        if sep != ",":
            raise SelectorError(f"found {sep!r}, expected: ',' or 'end of string' in {text!r}")

    if len(preds) == 1:
        return preds[0]
    return lambda labels: all(p(labels) for p in preds)


def _label_pred(key: str, op: str, values: frozenset[str] = frozenset()) -> LabelPredicate:
    """``op`` is "present", "absent", "in" or "!=" (not in: also true when the key is absent)."""

    def pred(labels: Mapping[str, str]) -> bool:
        if op == "present":
            return key in labels
        if op == "absent":
            return key not in labels
        value = labels.get(key)
        if op == "in":
            return value in values
        return value not in values

    return pred


def _field_pred(field: str, value: str, *, negate: bool) -> ObjectPredicate:
    def pred(obj: Mapping[str, Any]) -> bool:
        return (_field_value(obj, field) == value) != negate

    return pred


def _compare(key: str, bound: int, *, greater: bool) -> LabelPredicate:
    def pred(labels: Mapping[str, str]) -> bool:
        raw = labels.get(key)
        if raw is None:
            return False
        try:
            value = int(raw)
        except ValueError:
            return False
        return value > bound if greater else value < bound

    return pred


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    escaped = False
    for c in text:
        if escaped:
            buf.append("\\" + c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
    if escaped:
        raise SelectorError(f"invalid field selector: trailing backslash in {text!r}")
    parts.append("".join(buf))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    it = iter(text)
    for c in it:
        if c == "\\":
            nxt = next(it, "")
            if nxt not in ("\\", ",", "="):
                raise SelectorError(f"invalid field selector: invalid escape sequence in {text!r}")
            out.append(nxt)
        else:
            out.append(c)
    return "".join(out)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def parse_field_selector(text: str | None, resource_key: str) -> ObjectPredicate | None:
    """Parse a field selector for a resource; None (match everything) for an empty one."""
    if text is None or not text.strip():
        return None
    supported = COMMON_FIELDS | EXTRA_FIELDS.get(resource_key, frozenset())
    preds: list[ObjectPredicate] = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue
        for op in ("!=", "==", "="):
            idx = _find_unescaped(term, op)
            if idx >= 0:
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field = _unescape(term[:idx]).strip()
        value = _unescape(term[idx + len(op) :])
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        if op == "!=":
            preds.append(_field_pred(field, value, negate=True))
        else:
            preds.append(_field_pred(field, value, negate=False))
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    return lambda o: all(p(o) for p in preds)


def _find_unescaped(text: str, needle: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def field_selector_name(text: str | None) -> str | None:
    """The name pinned by ``metadata.name=<name>`` in a field selector, if any.

    RBAC uses it: a list or watch pinned to one name may be allowed by a rule
    that lists that name in ``resourceNames``.
    """
    if not text:
        return None
    for term in _split_unescaped(text, ","):
        for op in ("==", "="):
            idx = _find_unescaped(term, op)
            if idx >= 0 and _find_unescaped(term, "!=") < 0:
                if _unescape(term[:idx]).strip() == "metadata.name":
                    return _unescape(term[idx + len(op) :])
                break
    return None
