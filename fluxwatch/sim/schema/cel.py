"""``x-kubernetes-validations`` rules: compiled once with the CRD, run on every write.

The expressions are evaluated by the ``common-expression-language`` package (CEL's
Rust interpreter behind Python bindings). It was chosen over ``cel-python`` because it
runs every rule in Flux's published CRDs (``has()``, ``size()``, ``matches``,
``startsWith``, ``exists``/``all``, ``map``) correctly and about seventy times faster
(10 µs against 700 µs a rule), which matters when a benchmark writes thousands of
HelmReleases. Of what Kubernetes adds to CEL, the strings, lists and regex library
functions rules use most are provided below (``lowerAscii``, ``split``, ``isSorted``,
``find``...), and date/date-time/duration/byte fields reach rules as timestamps,
durations and bytes (the schema walk converts them); the url, quantity, ip/cidr and
format libraries, property-name escaping and cost budgets are not modelled, and a
rule calling them fails at evaluation, as a rule the server cannot run fails.

Wording of the outcomes follows apiextensions-apiserver's ``schema/cel`` validator.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import cel
import re2

from fluxwatch.sim import fielderrors as fe

_REASONS: Final = frozenset(
    {fe.INVALID, fe.FORBIDDEN, fe.REQUIRED, fe.DUPLICATE},
)
_QUOTED_KEY = re.compile(r"\[\s*'((?:[^'\\]|\\.)*)'\s*\]")


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled entry of ``x-kubernetes-validations``."""

    rule: str
    message: str
    message_expression: str
    field_path: str  # normalised: "" or "a.b" relative to the schema's value
    reason: str
    uses_old_self: bool
    optional_old_self: bool
    program: cel.Program
    message_program: cel.Program | None
    # Kubernetes library functions the rule or its messageExpression calls.
    extensions: tuple[str, ...] = ()

    @property
    def error_string(self) -> str:
        """ruleErrorString: the message when there is one, else the rule."""
        return self.message.strip() or self.rule.strip()

    def default_message(self) -> str:
        return self.message.strip() or f"failed rule: {self.rule.strip()}"


class RuleCompileError(ValueError):
    """A rule the server would refuse in a CRD: ``error(prefix)`` is its field error
    under the ``x-kubernetes-validations[i]`` path ``prefix``."""

    def __init__(self, child: str, kind: str, value: Any, detail: str) -> None:
        super().__init__(f"{child}: {detail}")
        self.child, self.kind, self.value, self.detail = child, kind, value, detail

    def error(self, prefix: str) -> fe.FieldError:
        return fe.FieldError(self.kind, f"{prefix}.{self.child}", self.value, self.detail)


def compile_rule(raw: dict[str, Any]) -> Rule:
    """One validation rule as written in the CRD, or ``RuleCompileError``."""
    source = raw.get("rule", "")
    if not isinstance(source, str) or not source.strip():
        raise RuleCompileError("rule", fe.REQUIRED, fe.OMIT, "")
    try:
        program = cel.compile(source)
    except ValueError as err:
        raise RuleCompileError(
            "rule", fe.INVALID, source, f"compilation failed: {_first_line(err)}"
        ) from err
    message_program = None
    message_expression = raw.get("messageExpression", "") or ""
    if message_expression:
        try:
            message_program = cel.compile(message_expression)
        except ValueError as err:
            raise RuleCompileError(
                "messageExpression",
                fe.INVALID,
                message_expression,
                f"messageExpression compilation failed: {_first_line(err)}",
            ) from err
    called = set(program.references()["functions"])
    if message_program is not None:
        called |= set(message_program.references()["functions"])
    reason = raw.get("reason") or fe.INVALID
    if reason not in _REASONS:
        raise RuleCompileError(
            "reason",
            fe.NOT_SUPPORTED,
            reason,
            'supported values: "FieldValueDuplicate", "FieldValueForbidden", '
            '"FieldValueInvalid", "FieldValueRequired"',
        )
    return Rule(
        rule=source,
        message=raw.get("message", "") or "",
        message_expression=message_expression,
        field_path=normalize_field_path(raw.get("fieldPath", "") or ""),
        reason=reason,
        uses_old_self="oldSelf" in program.variables(),
        optional_old_self=bool(raw.get("optionalOldSelf", False)),
        program=program,
        message_program=message_program,
        extensions=tuple(sorted(called & EXTENSIONS.keys())),
    )


def _first_line(err: Exception) -> str:
    return str(err).strip().split("\n", 1)[0]


def normalize_field_path(path: str) -> str:
    """``.spec.a['b.c']`` as field.Path writes the child it names: ``spec.a[b.c]`` is
    how the real server prints keys, properties joined with dots."""
    if not path:
        return ""
    text = _QUOTED_KEY.sub(lambda m: "." + m.group(1).replace("\\'", "'"), path)
    return text.lstrip(".")


def _failure(err: Exception) -> tuple[bool, str]:
    """cel-go's words for a runtime failure, and whether it is an overload error."""
    if isinstance(err, KeyError):
        return False, f"no such key: {err.args[0] if err.args else ''}"
    if isinstance(err, TypeError):
        return True, "no such overload"
    if isinstance(err, ZeroDivisionError):
        return False, "division by zero"
    return False, str(err).split("\n", 1)[0]


def evaluate(
    rules: tuple[Rule, ...],
    schema_type: str,
    path: str,
    value: Any,
    old: Any,
    has_old: bool,
) -> list[fe.FieldError]:
    """Run a schema's rules on one value (``self``), ``old`` its correlated old value
    (``oldSelf``) when ``has_old``: transition rules run only then."""
    errors: list[fe.FieldError] = []
    here = path or "<nil>"
    variables: dict[str, Any] = {"self": value}
    if has_old:
        variables["oldSelf"] = old
    for rule in rules:
        activation: dict[str, Any] | cel.Context = variables
        if rule.extensions:
            activation = cel.Context()
            for name, val in variables.items():
                activation.add_variable(name, val)
            for name in rule.extensions:
                activation.add_function(name, EXTENSIONS[name])
        if rule.uses_old_self and not has_old:
            continue
        try:
            result = rule.program.execute(activation)
        except Exception as err:  # the interpreter's own errors, reported as cel-go does
            overload, text = _failure(err)
            if overload:
                detail = (
                    f"'{text}': call arguments did not match a supported operator, function "
                    f"or macro signature for rule: {rule.error_string}"
                )
            else:
                detail = f"{text} evaluating rule: {rule.error_string}"
            errors.append(fe.invalid_value(here, schema_type, detail))
            continue
        if result is True:
            continue
        field = here
        if rule.field_path:
            field = f"{path}.{rule.field_path}" if path else rule.field_path
        errors.append(_rule_error(rule, field, schema_type, _message(rule, activation)))
    return errors


def _message(rule: Rule, activation: dict[str, Any] | cel.Context) -> str:
    if rule.message_program is None:
        return rule.default_message()
    try:
        text = rule.message_program.execute(activation)
    except Exception:  # a failing messageExpression falls back to the message
        return rule.default_message()
    if not isinstance(text, str) or not text.strip() or "\n" in text:
        return rule.default_message()
    return text


def _rule_error(rule: Rule, field: str, schema_type: str, detail: str) -> fe.FieldError:
    if rule.reason == fe.FORBIDDEN:
        return fe.forbidden(field, detail)
    if rule.reason == fe.REQUIRED:
        return fe.required(field, detail)
    if rule.reason == fe.DUPLICATE:
        return fe.duplicate(field, schema_type)
    return fe.invalid_value(field, schema_type, detail)


# -- Kubernetes' CEL libraries (strings v2, lists, regex) ----------------------------


def _char_at(s: str, i: int) -> str:
    if i < 0 or i > len(s):
        raise ValueError(f"index out of range: {i}")
    return s[i : i + 1]


def _index_of(x: Any, item: Any, start: int = 0) -> int:
    if isinstance(x, str):
        if start < 0 or start > len(x):
            raise ValueError(f"index out of range: {start}")
        return x.find(item, start)
    for i, v in enumerate(x):
        if v == item and type(v) is type(item):
            return i
    return -1


def _last_index_of(x: Any, item: Any, end: int | None = None) -> int:
    if isinstance(x, str):
        if end is None:
            return x.rfind(item)
        if end < 0 or end >= len(x):
            raise ValueError(f"index out of range: {end}")
        return x.rfind(item, 0, end + len(item))
    for i in range(len(x) - 1, -1, -1):
        if x[i] == item and type(x[i]) is type(item):
            return i
    return -1


def _ascii(s: str, upper: bool) -> str:
    if upper:
        return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in s)
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def _replace(s: str, old: str, new: str, n: int = -1) -> str:
    return s.replace(old, new, n if n >= 0 else -1)


def _split(s: str, sep: str, n: int = -1) -> list[str]:
    """Go's strings.SplitN."""
    if n == 0:
        return []
    if sep == "":
        chars = list(s)
        if 0 < n < len(chars):
            return [*chars[: n - 1], "".join(chars[n - 1 :])]
        return chars
    return s.split(sep, n - 1) if n > 0 else s.split(sep)


def _substring(s: str, start: int, end: int | None = None) -> str:
    stop = len(s) if end is None else end
    if start < 0 or start > len(s) or stop < start or stop > len(s):
        raise ValueError(f"index out of range: {start if start < 0 or start > len(s) else stop}")
    return s[start:stop]


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min(list) argument must not be empty")
    return min(items)


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max(list) argument must not be empty")
    return max(items)


def _find(s: str, pattern: str) -> str:
    m = re2.search(pattern, s)
    return m.group(0) if m else ""


def _find_all(s: str, pattern: str, n: int = -1) -> list[str]:
    found = [m.group(0) for m in re2.finditer(pattern, s)]
    return found if n < 0 else found[:n]


EXTENSIONS: Final[dict[str, Callable[..., Any]]] = {
    "charAt": _char_at,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda s: _ascii(s, False),
    "upperAscii": lambda s: _ascii(s, True),
    "replace": _replace,
    "split": _split,
    "substring": _substring,
    "trim": lambda s: s.strip(),
    "join": lambda items, sep="": sep.join(items),
    "reverse": lambda s: s[::-1],
    "isSorted": lambda items: all(a <= b for a, b in itertools.pairwise(items)),
    "sum": lambda items: sum(items),
    "min": _min,
    "max": _max,
    "find": _find,
    "findAll": _find_all,
}
