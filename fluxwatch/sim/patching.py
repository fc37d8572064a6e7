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


def json_patch(document: Any, operations: Any, *, checked: bool = True) -> Any:
    """Apply an RFC 6902 patch to a copy of ``document`` and return the copy.

    The patch handler decodes the patch first (a 400): with field validation on
    (``checked``, the server's default Warn and kubectl's Strict) into its own
    operation struct, whose op, path and from are strings; with Ignore straight into
    the JSON patch library's list of objects. What else is wrong with an operation is
    found while applying it (a 422)."""
    if checked:
        _decode_checked(operations)
    if operations is None:
        return deep_copy(document)  # null decodes as a patch of no operations
    if not isinstance(operations, list):
        raise PatchError(_type_error(operations, "jsonpatch.Patch"), bad_request=True)
    for op in operations:
        if op is not None and not isinstance(op, dict):
            raise PatchError(_type_error(op, "jsonpatch.Operation"), bad_request=True)
    doc = deep_copy(document)
    for given in operations:
        op = given or {}  # null decodes as an operation of no kind
        kind = op.get("op")
        path = op.get("path")
        source = op.get("from", "")
        if not isinstance(path, str) or not isinstance(source, str):
            raise PatchError(f"{kind} operation failed to decode path")
        if kind == "test" and "value" not in op:
            raise PatchError("operation, missing value field: missing value")
        if kind == "add":
            # The library adds (and replaces with) null when an operation has no value.
            doc = _add(doc, path, deep_copy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            tokens = _pointer(path)
            if not tokens:
                doc = deep_copy(op.get("value"))
                continue
            parent = _parent(doc, tokens, path)
            if isinstance(parent, list):
                parent[_index(parent, tokens[-1], path, for_add=False)] = deep_copy(op.get("value"))
            else:
                parent[tokens[-1]] = deep_copy(op.get("value"))
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
            raise PatchError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
    return doc


def _type_error(value: Any, go_type: str) -> str:
    return f"json: cannot unmarshal {deepjson.go_json_type(value)} into Go value of type {go_type}"


def _decode_checked(operations: Any) -> None:
    """The handler's decode into ``[]handlers.jsonPatchOp``, worded as it words it."""

    def refuse(message: str) -> PatchError:
        return PatchError(f"error decoding patch: {message}", bad_request=True)

    if operations is None:
        return
    if not isinstance(operations, list):
        raise refuse(_type_error(operations, "[]handlers.jsonPatchOp"))
    for op in operations:
        if op is None:
            continue
        if not isinstance(op, dict):
            raise refuse(_type_error(op, "handlers.jsonPatchOp"))
        for field in ("op", "path", "from"):
            value = op.get(field)
            if value is not None and not isinstance(value, str):
                raise refuse(
                    f"json: cannot unmarshal {deepjson.go_json_type(value)} into Go struct field "
                    f"jsonPatchOp.{field} of type string"
                )
