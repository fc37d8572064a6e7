"""Strategic merge patch, applied the way kube-apiserver applies it to built-in kinds.

``kubectl apply`` (client-side) and ``kubectl patch`` send built-in kinds a patch whose
lists merge by the field's OpenAPI markers: ``spec.template.spec.containers`` merges by
``name``, ``finalizers`` merges as a set, ``args`` is replaced whole. A patch also carries
directives (``$patch``, ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>``,
``$retainKeys``) that say what a plain JSON value cannot: "delete this item", "keep this
order", "drop the keys not listed". Read as a JSON merge patch, such a patch wipes every
container it does not mention, so this module merges it the way the real server does,
including its ordering rules and the wording and status of its failures.

``strategic_merge`` is pure: it works on private copies and never mutates its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from fluxwatch.sim.openapi import ListStrategy
from fluxwatch.sim.patching import deep_copy

Strategy = Callable[[tuple[str, ...]], ListStrategy | None]

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM = "$deleteFromPrimitiveList"
_SET_ORDER = "$setElementOrder"

# The real server's fixed error texts (k8s.io/apimachinery/pkg/util/mergepatch).
_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
_BAD_SET_ORDER = "invalid patch format of setElementOrder list"
_NO_LIST_OF_LISTS = "lists of lists are not supported"


class StrategicPatchError(ValueError):
    """A strategic merge patch the real server refuses. ``code`` is the status class the
    real server answers with: 400 for a malformed directive, 422 for a list of lists,
    500 (no reason) for the rest, which kube-apiserver passes through unclassified."""

    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code


def strategic_merge(
    original: dict[str, Any], patch: dict[str, Any], strategy: Strategy
) -> dict[str, Any]:
    """``original`` with ``patch`` merged in; ``strategy(path)`` gives the markers of the
    field at ``path`` (field names from the root, list items stepped into implicitly)."""
    cache: dict[tuple[str, ...], ListStrategy | None] = {}

    def lookup(path: tuple[str, ...]) -> ListStrategy | None:
        if path not in cache:
            cache[path] = strategy(path)
        return cache[path]

    return _Merger(lookup).merge_map(deep_copy(original), deep_copy(patch), ())


class _Merger:
    """One patch application; the methods mutate the private copies they are given."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    def markers(self, path: tuple[str, ...]) -> tuple[str, str]:
        """The field's patch strategy (with ``retainKeys`` split off: the server honours a
        ``$retainKeys`` directive wherever it appears) and its merge key."""
        found = self.strategy(path)
        if found is None:
            return "", ""
        strategies = [s for s in found.patch_strategy.split(",") if s]
        if "retainKeys" in strategies and len(strategies) <= 2:
            strategies.remove("retainKeys")
        elif len(strategies) > 1:
            raise StrategicPatchError(f"unexpected patch strategy: {_go(strategies)}")
        return (strategies[0] if strategies else ""), found.patch_merge_key

    # ---- maps ----------------------------------------------------------------------------

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, Any]:
        if _DIRECTIVE in patch:
            directive = patch[_DIRECTIVE]
            if directive == "replace":
                del patch[_DIRECTIVE]
                return _discard_nulls(patch)
            if directive == "delete":
                return {}
            # "merge" is only meaningful to the client that computed the patch; the
            # server refuses it in a map like any unknown value.
            raise StrategicPatchError(
                f"unknown patch type: {_go_s(directive)} in map: {_go(patch)}"
            )
        _apply_retain_keys(original, patch)
        self.merge_ordered_lists(original, patch, path)
        for key, value in list(patch.items()):
            delete_list = key.startswith(_DELETE_FROM)
            if delete_list:
                key = _strip_prefix(key, _DELETE_FROM, _BAD_PRIMITIVE_LIST)
            if value is None:
                original.pop(key, None)
                continue
            if key not in original or type(original[key]) is not type(value):
                # A new field, or one whose kind changes, takes the patch's value as is
                # (a deletion list only ever removes).
                if not delete_list:
                    _put(original, key, value)
                continue
            current = original[key]
            sub = (*path, key)
            if isinstance(current, dict):
                strat, _ = self.markers(sub)
                original[key] = (
                    _discard_nulls(value)
                    if strat == "replace"
                    else self.merge_map(current, value, sub)
                )
            elif isinstance(current, list):
                strat, merge_key = self.markers(sub)
                original[key] = self.merge_list_field(
                    current, value, sub, strat, merge_key, delete_list
                )
            else:
                original[key] = value
        return original

    def merge_ordered_lists(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """Apply each ``$setElementOrder/<list>`` together with ``<list>``'s patch: the
        merged list takes the directive's order, and items only the server has keep their
        place relative to their neighbours in the live list."""
        for key in [k for k in patch if k.startswith(_SET_ORDER)]:
            order = patch.pop(key)
            if not isinstance(order, list):
                raise StrategicPatchError(_bad_arg_type("[]interface {}", order))
            name = _strip_prefix(key, _SET_ORDER, _BAD_SET_ORDER)
            found_original, found_patch = name in original, name in patch
            live: list[Any] = []
            patched: list[Any] = []
            if found_original:
                if not isinstance(original[name], list):
                    raise StrategicPatchError(_bad_arg_type("[]interface {}", original[name]))
                live = original[name]
            if found_patch:
                if not isinstance(patch[name], list):
                    raise StrategicPatchError(_bad_arg_type("[]interface {}", patch[name]))
                patched = patch[name]
            sub = (*path, name)
            strat, merge_key = self.markers(sub)
            _check_order(patched, order, merge_key)
            if not found_original and not found_patch:
                continue
            if not found_patch:
                merged = live
            elif not found_original:
                merged = _remove_directives(_discard_nulls(patched))[0]
            else:
                merged = self.merge_list_field(list(live), patched, sub, strat, merge_key, False)
            in_order, server_only = _partition(merged, order, merge_key)
            kind = _element_kind(live, patched)
            original[name] = _normalize_order(in_order, server_only, order, live, merge_key, kind)
            patch.pop(name, None)

    # ---- lists ---------------------------------------------------------------------------

    def merge_list_field(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        strat: str,
        merge_key: str,
        delete_list: bool,
    ) -> list[Any]:
        if strat == "merge" or delete_list:
            return self.merge_list(original, patch, path, merge_key, delete_list)
        return [_discard_nulls(item) for item in patch]

    def merge_list(
        self,
        original: list[Any],
        patch: list[Any],
        path: tuple[str, ...],
        merge_key: str,
        delete_list: bool,
    ) -> list[Any]:
        if not original and not patch:
            return original
        kind = _element_kind(original, patch)
        if kind is not dict:
            if delete_list:
                return [item for item in original if not _contains(patch, item)]
            merged: list[Any] = []
            for item in original + patch:
                if not _contains(merged, item):
                    merged.append(item)
            plain = patch
        else:
            if not merge_key:
                raise StrategicPatchError(f"cannot merge lists without merge key for {path[-1]}")
            original, plain = _special_items(original, patch, merge_key)
            merged = self.merge_items(original, plain, path, merge_key)
        in_patch, server_only = _partition(merged, plain, merge_key)
        return _normalize_order(in_patch, server_only, plain, original, merge_key, kind)

    def merge_items(
        self, original: list[Any], patch: list[Any], path: tuple[str, ...], merge_key: str
    ) -> list[Any]:
        """Merge each patch item into the live item with the same merge key value, or
        append it when there is none. The live list itself is left as it was: it still
        gives the order of the items only the server has."""
        original = list(original)
        for item in patch:
            if merge_key not in item:
                raise StrategicPatchError(_no_merge_key(item, merge_key))
            at = _find(original, merge_key, item[merge_key])
            if at is None:
                original.append(_discard_nulls(item))
            else:
                original[at] = self.merge_map(original[at], item, path)
        return original


# ---- list helpers --------------------------------------------------------------------------


def _special_items(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    """Apply the ``$patch`` items of a list of maps: ``delete`` removes every live item
    with that merge key value, ``replace`` makes the rest of the patch the whole list.
    Returns the live list left and the patch's plain items."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise StrategicPatchError(_no_merge_key(item, merge_key))
            value = item[merge_key]
            original = [o for o in original if not _same(o.get(merge_key, _MISSING), value)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StrategicPatchError("merging lists cannot yet be specified in the patch")
        else:
            raise StrategicPatchError(f"unknown patch type: {_go_s(directive)} in map: {_go(item)}")
    if replace:
        return [_discard_nulls(item) for item in plain], []
    return original, plain


def _check_order(patch: list[Any], order: list[Any], merge_key: str) -> None:
    """The patch's items must appear in ``$setElementOrder`` and in the same relative
    order (items carrying a directive are exempt)."""
    if not order or not patch:
        return
    items = patch
    if merge_key:
        for item in patch:
            if not isinstance(item, dict):
                raise StrategicPatchError(_bad_arg_type("map[string]interface {}", item))
        items = [i for i in patch if i.get(_DIRECTIVE, _MISSING) != "delete"]
    at = seen = 0
    while at < len(items) and seen < len(order):
        item = items[at]
        if isinstance(item, dict) and _DIRECTIVE in item:
            at += 1
            continue
        if _key_equal(item, order[seen], merge_key):
            at += 1
        seen += 1
    if at < len(items):
        raise StrategicPatchError(
            f"The order in patch list:\n{_go(patch)}\n doesn't match {_SET_ORDER} list:\n"
            f"{_go(order)}\n"
        )


def _key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise StrategicPatchError(_bad_arg_type("map[string]interface {}", side))
        if merge_key not in side:
            raise StrategicPatchError(_no_merge_key(side, merge_key))
    return _same(left[merge_key], right[merge_key])


def _partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into those named in ``by`` and those only the server has."""
    named: list[Any] = []
    server_only: list[Any] = []
    for item in items:
        if merge_key:
            if not isinstance(item, dict):
                raise StrategicPatchError(_bad_arg_type("map[string]interface {}", item))
            if merge_key not in item:
                raise StrategicPatchError(_no_merge_key(item, merge_key))
            hit = _find(by, merge_key, item[merge_key]) is not None
        else:
            hit = _contains(by, item)
        (named if hit else server_only).append(item)
    return named, server_only


def _normalize_order(
    in_patch: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: type,
) -> list[Any]:
    """The patch's items in the patch's order, the server-only items in the live order,
    interleaved so each server-only item stays before the first patch item it preceded
    in the live list."""
    in_patch = _sort_by(in_patch, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    merged: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            merged.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            merged.append(in_patch[j])
            j += 1
        else:
            left = _index(server_order, server_only[i], merge_key, kind)
            right = _index(server_order, in_patch[j], merge_key, kind)
            if left >= 0 and right >= 0 and left < right:
                merged.append(server_only[i])
                i += 1
            else:
                merged.append(in_patch[j])
                j += 1
    return merged


def _sort_by(items: list[Any], order: list[Any], merge_key: str, kind: type) -> list[Any]:
    deleted: list[Any] = []
    if kind is dict:
        for lst in (items, order):
            for item in lst:
                if not isinstance(item, dict):
                    raise StrategicPatchError(_bad_arg_type("map[string]interface {}", item))
                if merge_key not in item:
                    raise StrategicPatchError(_no_merge_key(item, merge_key))
        deleted = [i for i in items if i.get(_DIRECTIVE, _MISSING) == "delete"]
        items = [i for i in items if i.get(_DIRECTIVE, _MISSING) != "delete"]

    def position(item: Any) -> int:
        at = _index(order, item, merge_key, kind)
        return at if at >= 0 else len(order)

    return sorted(items, key=position) + deleted


def _index(items: list[Any], item: Any, merge_key: str, kind: type) -> int:
    def value(x: Any) -> Any:
        if kind is not dict:
            return x
        return x.get(merge_key) if isinstance(x, dict) else None

    wanted = value(item)
    for at, other in enumerate(items):
        if _same(value(other), wanted):
            return at
    return -1


def _find(items: list[Any], merge_key: str, value: Any) -> int | None:
    for at, item in enumerate(items):
        if not isinstance(item, dict):
            raise StrategicPatchError(f"value for key {at} is not a map")
        if merge_key in item and _same(item[merge_key], value):
            return at
    return None


def _element_kind(*lists: list[Any]) -> type:
    """The one JSON type every item of the lists has; lists of lists are refused."""
    kind: type | None = None
    for lst in lists:
        for item in lst:
            if kind is None:
                kind = type(item)
                if kind is list:
                    raise StrategicPatchError(_NO_LIST_OF_LISTS, 422)
            elif type(item) is not kind:
                raise StrategicPatchError(
                    f"list element types are not identical: {_go(list(lists))}"
                )
    if kind is None:
        raise StrategicPatchError("no elements in any of the given slices")
    return kind


# ---- map helpers ---------------------------------------------------------------------------


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys``: drop the live keys it does not list; every key the patch sets
    must be listed."""
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise StrategicPatchError(_BAD_RETAIN_KEYS, 400)
    kept = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_FROM, _SET_ORDER)):
            continue
        if key not in kept:
            raise StrategicPatchError(_BAD_RETAIN_KEYS, 400)
    for key in [k for k in original if k not in kept]:
        del original[key]


def _strip_prefix(key: str, prefix: str, error: str) -> str:
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise StrategicPatchError(error, 400)
    return rest


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Set a field to a patch value as the server keeps it: nulls dropped, and a map
    carrying a ``$patch`` directive (meaningless where nothing is merged) dropped."""
    kept, keep = _remove_directives(_discard_nulls(value))
    if keep:
        target[key] = kept
    else:
        target.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out: dict[str, Any] = {}
        for k, v in value.items():
            kept, keep = _remove_directives(v)
            if keep:
                out[k] = kept
        return out, True
    if isinstance(value, list):
        return [kept for kept, keep in map(_remove_directives, value) if keep], True
    return value, True


def _discard_nulls(value: Any) -> Any:
    """Null map values dropped at every depth: the real server decodes the merged map
    into the kind's Go type, where an absent and a null field are the same."""
    if isinstance(value, dict):
        return {k: _discard_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_discard_nulls(v) for v in value]
    return value


# ---- equality and Go's wording ------------------------------------------------------------

_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    """Equality of decoded JSON scalars as Go compares interface values: the types must
    match too, so ``1``, ``1.0`` and ``true`` are all different."""
    return type(a) is type(b) and a == b


def _contains(items: list[Any], value: Any) -> bool:
    return any(_same(item, value) for item in items)


def _no_merge_key(item: Any, merge_key: str) -> str:
    return f"map: {_go(item)} does not contain declared merge key: {merge_key}"


_GO_TYPES = {
    dict: "map[string]interface {}",
    list: "[]interface {}",
    str: "string",
    bool: "bool",
    int: "int64",
    float: "float64",
}


def _bad_arg_type(expected: str, actual: Any) -> str:
    got = "%!s(<nil>)" if actual is None else _GO_TYPES.get(type(actual), type(actual).__name__)
    return f"expected a {expected}, but received a {got}"


def _go_s(value: Any) -> str:
    """Go's ``%s`` of a decoded JSON value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "%!s(<nil>)"
    if isinstance(value, dict | list):
        return _go(value)
    return f"%!s({_GO_TYPES[type(value)]}={_go(value)})"


def _go(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (maps print with sorted keys)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if isinstance(value, float):
        return _go_float(value)
    return str(value)


def _go_float(value: float) -> str:
    """``%v`` of a float64: the shortest digits, in exponent form outside [1e-4, 1e6)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    exact = Decimal(repr(value))
    exponent = exact.adjusted()
    if -4 <= exponent < 6:
        return format(exact.normalize(), "f")
    sign, digits, _ = exact.normalize().as_tuple()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
