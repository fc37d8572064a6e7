"""Who a request is, as kube-apiserver's authentication and impersonation decide it,
and the review kinds that answer questions about it.

A request with no credentials is ``system:anonymous`` (group ``system:unauthenticated``)
and left to RBAC; a bearer token that is not known is a 401. Tokens are either
static (the admin token, ``ApiServer.token_for``) or minted by the TokenRequest
subresource ``serviceaccounts/<name>/token``: JWT-shaped, remembered by the server,
and dead once they expire on the store's clock or their ServiceAccount is deleted
(or recreated with another uid). ``Impersonate-*`` headers then switch the user,
each impersonated attribute checked against the ``impersonate`` verb first.

SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectRulesReview and
SelfSubjectReview are answered from the same ``Authorizer`` and never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson

from fluxwatch.sim import fielderrors
from fluxwatch.sim.fielderrors import FieldError
from fluxwatch.sim.rbac import (
    ANONYMOUS,
    ANONYMOUS_USER,
    AUTHENTICATED,
    UNAUTHENTICATED,
    Authorizer,
    Request,
    User,
    service_account_groups,
    split_service_account,
)
from fluxwatch.sim.store import ApiError, Store, bad_request, not_found, object_key

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600
MAX_TOKEN_SECONDS = 2**32
_AUTHN = "authentication.k8s.io"
_AUTHZ = "authorization.k8s.io"


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


@dataclass(frozen=True, slots=True)
class _Minted:
    namespace: str
    name: str
    uid: str  # of the ServiceAccount the token was minted for
    expires: float
    audiences: tuple[str, ...]
    jti: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Authenticator:
    """Bearer tokens of one server: static ones and those TokenRequest minted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._static: dict[str, User] = {}
        self._minted: dict[str, _Minted] = {}
        self._key = secrets.token_bytes(32)
        self._kid = _b64(hashlib.sha256(self._key).digest()[:16])

    def add_static(self, token: str, user: User) -> None:
        self._static[token] = user

    def authenticate(self, authorization: str) -> User:
        """The user of an ``Authorization`` header: anonymous without one, 401 for a
        token that is not (or no longer) valid."""
        parts = authorization.strip().split(" ", 2)
        # Another scheme (Basic) is not a bearer token: the request stays anonymous, as
        # when no authenticator recognises it; an empty bearer token is invalid.
        if len(parts) < 2 or parts[0].lower() != "bearer":
            return ANONYMOUS
        token = parts[1]
        if not token:
            raise unauthorized()
        user = self._static.get(token)
        if user is not None:
            return user
        minted = self._minted.get(token)
        if minted is None:
            raise unauthorized()
        user = self._minted_user(minted)
        if user is None:
            raise unauthorized()
        return user

    def _minted_user(self, minted: _Minted) -> User | None:
        if self.store._clock() >= minted.expires:
            return None
        if API_AUDIENCE not in minted.audiences:
            return None
        sa = self.store.table("serviceaccounts").objs.get(object_key(minted.namespace, minted.name))
        if sa is None or sa["metadata"].get("uid") != minted.uid:
            return None
        return User(
            f"system:serviceaccount:{minted.namespace}:{minted.name}",
            (*service_account_groups(minted.namespace), AUTHENTICATED),
            minted.uid,
            (("authentication.kubernetes.io/credential-id", (f"JTI={minted.jti}",)),),
        )

    def request_token(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """Answer ``POST .../serviceaccounts/<name>/token`` with a TokenRequest whose
        status carries a new token for that ServiceAccount."""
        body = body if isinstance(body, dict) else {}
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        seconds = spec.get("expirationSeconds")
        if seconds is None:
            seconds = DEFAULT_TOKEN_SECONDS
        errors: list[FieldError] = []
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            errors.append(fielderrors.invalid_value("spec.expirationSeconds", seconds))
        elif seconds < MIN_TOKEN_SECONDS:
            errors.append(
                fielderrors.invalid_value(
                    "spec.expirationSeconds",
                    seconds,
                    "may not specify a duration less than 10 minutes",
                )
            )
        elif seconds > MAX_TOKEN_SECONDS:
            errors.append(
                fielderrors.invalid_value(
                    "spec.expirationSeconds",
                    seconds,
                    "may not specify a duration larger than 2^32 seconds",
                )
            )
        if errors:
            raise ApiError(
                422,
                "Invalid",
                fielderrors.invalid_message("TokenRequest", _AUTHN, name, errors),
                fielderrors.status_details("TokenRequest", _AUTHN, name, errors),
            )
        assert isinstance(seconds, int)
        table = self.store.table("serviceaccounts")
        sa = table.objs.get(object_key(namespace, name))
        if sa is None:
            raise not_found(table.res, name)
        audiences = spec.get("audiences") or [API_AUDIENCE]
        audiences = [str(a) for a in audiences] if isinstance(audiences, list) else [API_AUDIENCE]
        now = self.store._clock()
        expires = int(now) + seconds
        uid = str(sa["metadata"].get("uid", ""))
        jti = str(uuid.uuid4())
        claims = {
            "aud": audiences,
            "exp": expires,
            "iat": int(now),
            "iss": ISSUER,
            "jti": jti,
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uid},
            },
            "nbf": int(now),
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        signing_input = (
            _b64(orjson.dumps({"alg": "HS256", "kid": self._kid}))
            + "."
            + _b64(orjson.dumps(claims))
        )
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        self._minted[token] = _Minted(namespace, name, uid, expires, tuple(audiences), jti)
        return {
            "kind": "TokenRequest",
            "apiVersion": f"{_AUTHN}/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": _rfc3339(now),
            },
            "spec": {
                "audiences": audiences,
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {"token": token, "expirationTimestamp": _rfc3339(expires)},
        }


# ---- impersonation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ask:
    """One impersonated attribute: a v1.ObjectReference as the real filter builds it."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""

    def go(self) -> str:
        # Go's %v of an ObjectReference: its seven string fields, space-separated.
        fields = (self.kind, self.namespace, self.name, "", self.api_version, "", self.field_path)
        return "{" + " ".join(fields) + "}"


_EXTRA_PREFIX = "impersonate-extra-"


def impersonate(authorizer: Authorizer, user: User, headers: Mapping[str, str]) -> User:
    """The user a request acts as after its ``Impersonate-*`` headers: each asked-for
    user, group, uid and extra must be allowed the ``impersonate`` verb, or the
    request is a 403 naming the first refused one."""
    getall = getattr(headers, "getall", None)

    def values(name: str) -> list[str]:
        if getall is not None:
            return [str(v) for v in getall(name, [])]
        value = headers.get(name)
        return [value] if value else []

    asks: list[_Ask] = []
    requested_user = headers.get("Impersonate-User", "")
    if requested_user:
        sa = split_service_account(requested_user)
        if sa is not None:
            asks.append(_Ask("ServiceAccount", sa[1], sa[0]))
        else:
            asks.append(_Ask("User", requested_user))
    group_values = values("Impersonate-Group")
    asks.extend(_Ask("Group", g) for g in group_values)
    for header in dict.fromkeys(h for h in headers if h.lower().startswith(_EXTRA_PREFIX)):
        key = unquote(header[len(_EXTRA_PREFIX) :].lower())
        for value in values(header):
            asks.append(_Ask("UserExtra", value, api_version=f"{_AUTHN}/v1", field_path=key))
    requested_uid = headers.get("Impersonate-Uid", "")
    if requested_uid:
        asks.append(_Ask("UID", requested_uid, api_version=f"{_AUTHN}/v1"))
    if not asks:
        return user
    if not requested_user:
        listed = "[" + " ".join(a.go() for a in asks) + "]"
        raise bad_request(f"requested {listed} without impersonating a user")

    username = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    uid = ""
    for ask in asks:
        if ask.kind == "ServiceAccount":
            req = Request(user, "impersonate", "", "serviceaccounts", "", ask.namespace, ask.name)
            username = requested_user
            if not group_values:
                groups = list(service_account_groups(ask.namespace))
        elif ask.kind == "User":
            req = Request(user, "impersonate", "", "users", name=ask.name)
            username = ask.name
        elif ask.kind == "Group":
            req = Request(user, "impersonate", "", "groups", name=ask.name)
            groups.append(ask.name)
        elif ask.kind == "UserExtra":
            req = Request(user, "impersonate", _AUTHN, "userextras", ask.field_path, name=ask.name)
            extra.setdefault(ask.field_path, []).append(ask.name)
        else:
            req = Request(user, "impersonate", _AUTHN, "uids", name=ask.name)
            uid = ask.name
        if not authorizer.allowed(req):
            raise req.forbidden()
    if username != ANONYMOUS_USER:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return User(username, tuple(groups), uid, tuple((k, tuple(v)) for k, v in extra.items()))


# ---- reviews ----------------------------------------------------------------------------


def _invalid(kind: str, group: str, errors: list[FieldError]) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        fielderrors.invalid_message(kind, group, "", errors),
        fielderrors.status_details(kind, group, "", errors),
    )


def _spec(body: Any, kind: str, group: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    sent = body.get("kind")
    if sent not in (None, "", kind):
        raise bad_request(f"the kind of the body ({sent}) is not {kind}")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise _invalid(kind, group, [fielderrors.invalid_value("spec", spec, "must be an object")])
    return spec


def _attributes(user: User, spec: dict[str, Any], kind: str) -> Request:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        raise _invalid(
            kind,
            _AUTHZ,
            [
                fielderrors.invalid_value(
                    "spec.nonResourceAttributes",
                    non_resource,
                    "cannot be specified in combination with resourceAttributes",
                )
            ],
        )
    if isinstance(resource, dict):
        return Request(
            user,
            str(resource.get("verb") or ""),
            str(resource.get("group") or ""),
            str(resource.get("resource") or ""),
            str(resource.get("subresource") or ""),
            str(resource.get("namespace") or ""),
            str(resource.get("name") or ""),
        )
    if isinstance(non_resource, dict):
        return Request(
            user,
            str(non_resource.get("verb") or ""),
            path=str(non_resource.get("path") or ""),
        )
    raise _invalid(
        kind,
        _AUTHZ,
        [
            fielderrors.invalid_value(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ],
    )


def _access_status(authorizer: Authorizer, req: Request) -> dict[str, Any]:
    allowed, reason = authorizer.decide(req)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return status


def review(
    authorizer: Authorizer, kind_key: str, user: User, body: Any, now: str
) -> dict[str, Any]:
    """The answer to a create of one of the review kinds (``resources.VIRTUAL``, keyed
    by ``ResourceType.key``), for ``user`` who sent it."""
    if kind_key == f"selfsubjectreviews.{_AUTHN}":
        _spec(body, "SelfSubjectReview", _AUTHN)
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": f"{_AUTHN}/v1",
            "metadata": {"creationTimestamp": now},
            "status": {"userInfo": user.info()},
        }
    if kind_key == f"selfsubjectaccessreviews.{_AUTHZ}":
        spec = _spec(body, "SelfSubjectAccessReview", _AUTHZ)
        req = _attributes(user, spec, "SelfSubjectAccessReview")
        return _answer("SelfSubjectAccessReview", spec, _access_status(authorizer, req))
    if kind_key == f"subjectaccessreviews.{_AUTHZ}":
        spec = _spec(body, "SubjectAccessReview", _AUTHZ)
        name = str(spec.get("user") or "")
        groups = tuple(str(g) for g in spec.get("groups") or ())
        if not name and not groups:
            raise _invalid(
                "SubjectAccessReview",
                _AUTHZ,
                [
                    fielderrors.invalid_value(
                        "spec.user", name, "at least one of user or group must be specified"
                    )
                ],
            )
        extra = spec.get("extra") or {}
        subject = User(
            name,
            groups,
            str(spec.get("uid") or ""),
            tuple((str(k), tuple(str(x) for x in v)) for k, v in extra.items())
            if isinstance(extra, dict)
            else (),
        )
        req = _attributes(subject, spec, "SubjectAccessReview")
        return _answer("SubjectAccessReview", spec, _access_status(authorizer, req))
    if kind_key == f"selfsubjectrulesreviews.{_AUTHZ}":
        spec = _spec(body, "SelfSubjectRulesReview", _AUTHZ)
        namespace = str(spec.get("namespace") or "")
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        for rule in authorizer.rules_for(user, namespace):
            if rule.non_resource_urls:
                non_resource_rules.append(
                    {"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)}
                )
            else:
                entry: dict[str, Any] = {
                    "verbs": list(rule.verbs),
                    "apiGroups": list(rule.api_groups),
                    "resources": list(rule.resources),
                }
                if rule.resource_names:
                    entry["resourceNames"] = list(rule.resource_names)
                resource_rules.append(entry)
        return _answer(
            "SelfSubjectRulesReview",
            spec,
            {
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": False,
            },
        )
    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")


def _answer(kind: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": kind,
        "apiVersion": f"{_AUTHZ}/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }
