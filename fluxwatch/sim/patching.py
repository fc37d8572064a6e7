"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain JSON values.

``merge_patch`` never mutates its inputs and shares untouched subtrees with the
target, which is what the store's copy-on-write objects want. ``json_patch``
works on a private deep copy because its operations are positional.
"""

from __future__ import annotations

from typing import Any

from fluxwatch.sim import deepjson


class PatchError(ValueError):
    """A patch that cannot be applied; ``bad_request`` tells a malformed patch (400)
    from one that is well-formed but does not apply to this object (422)."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


deep_copy = deepjson.copy


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values that, unlike ``==``, keeps ``true`` apart from ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer {path!r}: not a string")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r} in path {path!r}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchError(f"array index {idx} out of bounds in path {path!r}")
    return idx


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"doc is missing path: {path!r}")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, path, for_add=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, for_add=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, for_add=True), value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, for_add=False))
    raise PatchError(f"doc is missing path: {path!r}")


def json_patch(document: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of ``document`` and return the copy."""
    if not isinstance(operations, list):
        raise PatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch", bad_request=True
        )
    # Only what jsonpatch.DecodePatch refuses is a malformed patch (400); an operation
    # that decodes but cannot be applied fails in Apply, which the server answers 422.
    for op in operations:
        if op is not None and not isinstance(op, dict):  # null decodes, as a nil map
            raise PatchError(
                f"json: cannot unmarshal {_go_json_type(op)} into Go value of type "
                "jsonpatch.Operation",
                bad_request=True,
            )
    doc = deep_copy(document)
    for op in operations:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind = op["op"]
        path = op.get("path")
        source = op.get("from", "")
        if not isinstance(path, str) or not isinstance(source, str):
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation on {path!r}")
        if kind == "add":
            doc = _add(doc, path, deep_copy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            tokens = _pointer(path)
            if not tokens:
                doc = deep_copy(op["value"])
                continue
            parent = _parent(doc, tokens, path)
            if isinstance(parent, list):
                parent[_index(parent, tokens[-1], path, for_add=False)] = deep_copy(op["value"])
            else:
                parent[tokens[-1]] = deep_copy(op["value"])
        elif kind == "move":
            if path.startswith(source + "/"):
                raise PatchError(f"cannot move {source!r} into its own child {path!r}")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, deep_copy(_get(doc, source)))
        elif kind == "test":
            if not json_equal(_get(doc, path), op["value"]):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected kind of JSON patch operation: {kind!r}")
    return doc


def _go_json_type(value: Any) -> str:
    """The JSON type as encoding/json names it in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array"
