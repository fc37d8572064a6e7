"""List and watch parameters as kube-apiserver 1.32 decodes, checks and applies them.

The order matters and is the real handler's: the query is decoded first (integers by
strconv.ParseInt, booleans leniently, selectors parsed: a 400 with the parser's words),
then ListOptions are validated (422), then the kind's field labels are checked (400).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from tests.conformance.conftest import Api
from tests.conftest import helmrelease

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
HRS = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/default/helmreleases"
CMS = "/api/v1/namespaces/default/configmaps"


def names(body: dict[str, Any]) -> list[str]:
    return [i["metadata"]["name"] for i in body["items"]]


def bad_request(message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400,
    }


async def configmaps(api: Api, **labels: dict[str, str]) -> None:
    for name, its in labels.items():
        code, body = await api.post(CMS, {"metadata": {"name": name, "labels": its}})
        assert code == 201, body


# ---- label selectors: labels.Parse -----------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
        (
            "a>x",
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
        (
            "Bad_=1",
            'unable to parse requirement: <nil>: Invalid value: "Bad_": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "a=b_",
            'unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must '
            "be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or "
            "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        ),
    ],
)
@pytest.mark.parametrize("watch", [False, True], ids=["list", "watch"])
async def test_a_label_selector_that_does_not_parse_is_400_with_the_parser_text(
    api: Api, selector: str, message: str, watch: bool
) -> None:
    params = {"labelSelector": selector, **({"watch": "true"} if watch else {})}
    code, body = await api.get(HRS, params=params)
    assert (code, body) == (400, bad_request(message))


async def test_an_empty_value_is_a_value_in_equality_and_set_selectors(api: Api) -> None:
    """``a==`` and ``a in ()`` parse (the value set is {""}): they select a present, empty
    label, not a missing one."""
    await configmaps(api, empty={"a": ""}, full={"a": "x"}, none={})
    for selector in ("a==", "a=", "a in ()", "a in (,)"):
        code, body = await api.get(CMS, params={"labelSelector": selector})
        assert code == 200, body
        assert names(body) == ["empty"], selector
    _, body = await api.get(CMS, params={"labelSelector": "a notin ()"})
    assert names(body) == ["full", "none"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier in (web,db)", ["db", "web"]),
        ("tier notin (web)", ["db", "none"]),
        ("tier", ["db", "web"]),
        ("!tier", ["none"]),
        ("tier!=web", ["db", "none"]),
        ("in in (in)", []),
        ("size>2", ["db"]),
        ("size<2", []),
    ],
)
async def test_set_based_selectors_filter_the_list(
    api: Api, selector: str, expected: list[str]
) -> None:
    await configmaps(
        api, web={"tier": "web", "size": "1_0"}, db={"tier": "db", "size": "3"}, none={}
    )
    code, body = await api.get(CMS, params={"labelSelector": selector})
    assert code == 200, body
    assert names(body) == expected


async def test_a_set_selected_watch_sends_deleted_when_an_object_leaves_the_set(api: Api) -> None:
    """The watch cache filters old and new object: leaving the selection is DELETED (the
    object as it was, at the new resourceVersion), entering it is ADDED."""
    await configmaps(api, a={"tier": "web"})
    _, listed = await api.get(CMS)
    rv = listed["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "labelSelector": "tier notin (db)"}
    async with api.session.get(CMS, params=params) as resp:
        assert resp.status == 200

        async def event() -> tuple[str, str, dict[str, str]]:
            line = await asyncio.wait_for(resp.content.readline(), 2)
            ev = orjson.loads(line)
            meta = ev["object"]["metadata"]
            return ev["type"], meta["name"], meta.get("labels", {})

        await api.patch(f"{CMS}/a", {"metadata": {"labels": {"tier": "db"}}})
        assert await event() == ("DELETED", "a", {"tier": "web"})
        await api.patch(f"{CMS}/a", {"metadata": {"labels": {"tier": "db2"}}})
        assert await event() == ("ADDED", "a", {"tier": "db2"})


# ---- field selectors: fields.ParseSelector and each kind's field labels ----------------------


@pytest.mark.parametrize(
    ("path", "selector", "message"),
    [
        # Lease has no conversion of its own: the default one, with its own words.
        (
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            "spec.holderIdentity=x",
            '"spec.holderIdentity" is not a known field selector: only "metadata.name", '
            '"metadata.namespace"',
        ),
        (
            "/api/v1/namespaces",
            "metadata.namespace=x",
            "field label not supported: metadata.namespace",
        ),
        (HRS, "status.phase=x", "field label not supported: status.phase"),
        ("/api/v1/secrets", "data.x=y", "field label not supported: data.x"),
        ("/api/v1/events", "message=x", "field label not supported: message"),
        # Terms are sorted before the labels are checked: the first unknown one is named.
        (HRS, "zzz=1,aaa=2", "field label not supported: aaa"),
        (CMS, "a", "invalid selector: 'a'; can't understand 'a'"),
        (CMS, "metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
        (CMS, "metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ],
)
async def test_a_field_selector_the_kind_does_not_support_is_400(
    api: Api, path: str, selector: str, message: str
) -> None:
    code, body = await api.get(path, params={"fieldSelector": selector})
    assert (code, body) == (400, bad_request(message))


async def test_event_field_selectors_are_the_ones_kubectl_describe_uses(api: Api) -> None:
    base = {"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "Ready"}
    ref = {"kind": "HelmRelease", "namespace": "default", "name": "podinfo", "uid": "u-1"}
    for name, extra in {
        "by-source": {"source": {"component": "helm-controller"}},
        "by-reporter": {"reportingComponent": "fluxwatch", "reportingInstance": "fluxwatch-0"},
    }.items():
        body = {**base, "metadata": {"name": name}, "involvedObject": ref, **extra}
        code, created = await api.post("/api/v1/namespaces/default/events", body)
        assert code == 201, created
    describe = (
        "involvedObject.name=podinfo,involvedObject.namespace=default,"
        "involvedObject.kind=HelmRelease,involvedObject.uid=u-1"
    )
    _, both = await api.get("/api/v1/namespaces/default/events", params={"fieldSelector": describe})
    assert names(both) == ["by-reporter", "by-source"]
    # ``source`` is the source component, or else the reporting controller.
    for source, expected in (("helm-controller", ["by-source"]), ("fluxwatch", ["by-reporter"])):
        _, got = await api.get("/api/v1/events", params={"fieldSelector": f"source={source}"})
        assert names(got) == expected
    _, none = await api.get("/api/v1/events", params={"fieldSelector": "type=Warning,reason=Ready"})
    assert names(none) == []


# ---- the order of the checks -------------------------------------------------------------------


async def test_a_selector_that_does_not_parse_is_400_before_list_options_are_validated(
    api: Api,
) -> None:
    code, body = await api.get(
        HRS, params={"labelSelector": "a in (b", "resourceVersionMatch": "Exact"}
    )
    assert code == 400
    assert body["message"] == "unable to parse requirement: found '', expected: ',' or ')'"


async def test_an_unsupported_field_label_is_checked_after_list_options(api: Api) -> None:
    code, body = await api.get(
        HRS, params={"fieldSelector": "spec.suspend=true", "resourceVersionMatch": "Exact"}
    )
    assert code == 422
    assert body["reason"] == "Invalid"


# ---- integers and booleans of the query ------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "ten"}, 'strconv.ParseInt: parsing "ten": invalid syntax'),
        ({"limit": ""}, 'strconv.ParseInt: parsing "": invalid syntax'),
        (
            {"limit": "99999999999999999999"},
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (
            {"watch": "true", "timeoutSeconds": "0.5"},
            'strconv.ParseInt: parsing "0.5": invalid syntax',
        ),
    ],
)
async def test_an_integer_parameter_that_does_not_parse_is_400(
    api: Api, params: dict[str, str], message: str
) -> None:
    code, body = await api.get(HRS, params=params)
    assert (code, body) == (400, bad_request(message))


async def test_a_limit_that_is_not_positive_is_no_limit(api: Api) -> None:
    await configmaps(api, a={}, b={})
    for limit in ("0", "-1"):
        code, body = await api.get(CMS, params={"limit": limit})
        assert code == 200
        assert names(body) == ["a", "b"]
        assert "continue" not in body["metadata"]


async def test_remaining_item_count_is_set_only_for_an_unfiltered_page(api: Api) -> None:
    await configmaps(api, a={"x": "1"}, b={"x": "1"}, c={"x": "1"})
    _, plain = await api.get(CMS, params={"limit": "1"})
    assert plain["metadata"]["remainingItemCount"] == 2
    _, selected = await api.get(CMS, params={"limit": "1", "labelSelector": "x=1"})
    assert selected["metadata"]["continue"]
    assert "remainingItemCount" not in selected["metadata"]


async def test_booleans_are_read_leniently_anything_but_false_or_0_is_true(api: Api) -> None:
    """runtime.Convert_Slice_string_To_bool: ``sendInitialEvents=yes`` is decoded (true),
    so a list refuses it as a sendInitialEvents, not as a bad boolean."""
    code, body = await api.get(HRS, params={"sendInitialEvents": "yes"})
    assert code == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: sendInitialEvents is forbidden for list",
            "field": "sendInitialEvents",
        }
    ]
    code, listed = await api.get(HRS, params={"watch": "False"})
    assert code == 200 and listed["kind"] == "HelmReleaseList"


async def test_watch_t_is_a_watch(api: Api) -> None:
    api.server.max_watch_timeout = 0.2
    async with api.session.get(HRS, params={"watch": "t"}) as resp:
        assert resp.status == 200
        assert await resp.read() == b""  # no objects: a watch that ends, not a list


async def test_a_named_get_with_watch_is_a_get(api: Api) -> None:
    """``?watch=`` turns a list into a watch; a GET of one object stays a get (the
    single-object watch is the /watch/ path)."""
    api.server.store.create(HR_KEY, helmrelease("podinfo"))
    api.server.max_watch_timeout = 0.3  # were it served as a watch, it would end soon
    code, body = await api.get(f"{HRS}/podinfo", params={"watch": "true"})
    assert code == 200
    assert body["kind"] == "HelmRelease"


async def test_timeout_seconds_zero_is_the_server_default_not_an_immediate_end(api: Api) -> None:
    api.server.max_watch_timeout = 0.4
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with api.session.get(HRS, params={"watch": "true", "timeoutSeconds": "0"}) as resp:
        await resp.read()
    assert loop.time() - started >= 0.35


# ---- resourceVersionMatch and initial events, on every kind fluxwatch reads ------------------


async def test_an_unknown_resource_version_match_on_a_list_is_422_not_supported(api: Api) -> None:
    code, body = await api.get(HRS, params={"resourceVersion": "1", "resourceVersionMatch": "Foo"})
    assert code == 422
    assert body["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Foo": '
        'supported values: "Exact", "NotOlderThan", ""'
    )


KINDS = {
    "helmreleases": (HRS, {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease"}),
    "leases": ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {}),
    "secrets": ("/api/v1/namespaces/default/secrets", {}),
    "events": (
        "/api/v1/namespaces/default/events",
        {"involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}},
    ),
    "namespaces": ("/api/v1/namespaces", {}),
}


@pytest.mark.parametrize("rv", ["", "0"], ids=["no-version", "version-0"])
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_watch_without_a_version_or_from_0_starts_with_every_object_added(
    api: Api, kind: str, rv: str
) -> None:
    path, extra = KINDS[kind]
    if kind == "helmreleases":
        for name in ("a", "b"):
            api.server.store.create(HR_KEY, helmrelease(name))
    else:
        for name in ("a", "b"):
            code, body = await api.post(path, {"metadata": {"name": name}, **extra})
            assert code == 201, body
    _, listed = await api.get(path)
    api.server.max_watch_timeout = 0.15
    params = {"watch": "true", **({"resourceVersion": rv} if rv else {})}
    async with api.session.get(path, params=params) as resp:
        lines = (await resp.read()).splitlines()
    events = [orjson.loads(line) for line in lines]
    assert [e["type"] for e in events] == ["ADDED"] * len(listed["items"])
    assert sorted(e["object"]["metadata"]["name"] for e in events) == names(listed)


@pytest.mark.parametrize("watch", [False, True], ids=["list", "watch"])
@pytest.mark.parametrize(
    ("rv", "problem"),
    [
        ("abc", "invalid syntax"),
        ("-1", "invalid syntax"),
        ("18446744073709551616", "value out of range"),
    ],
)
async def test_a_resource_version_that_does_not_parse_is_a_bare_500(
    api: Api, watch: bool, rv: str, problem: str
) -> None:
    """The storage versioner's InvalidError is not a Status error and the read path
    does not convert it: the handler answers 500 without a reason."""
    params = {"resourceVersion": rv, **({"watch": "true"} if watch else {})}
    code, body = await api.get(HRS, params=params)
    assert code == 500
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: parsing "{rv}": '
        f"{problem}",
        "code": 500,
    }


async def test_a_single_object_watch_refuses_a_field_selector_naming_another_object(
    api: Api,
) -> None:
    api.server.store.create(HR_KEY, helmrelease("podinfo"))
    api.server.max_watch_timeout = 0.15
    path = "/apis/helm.toolkit.fluxcd.io/v2/watch/namespaces/default/helmreleases/podinfo"
    code, body = await api.get(path, params={"fieldSelector": "metadata.name=other"})
    assert (code, body) == (
        400,
        bad_request("fieldSelector metadata.name doesn't match requested name"),
    )
    code, _ = await api.get(path, params={"fieldSelector": "metadata.name!=podinfo"})
    assert code == 400
    async with api.session.get(path, params={"fieldSelector": "metadata.name=podinfo"}) as resp:
        events = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "podinfo")]


async def test_a_list_from_version_0_ignores_the_limit(api: Api) -> None:
    """The watch cache serves any version at all from memory, whole: no page, no token."""
    await configmaps(api, a={}, b={}, c={})
    code, body = await api.get(CMS, params={"limit": "1", "resourceVersion": "0"})
    assert code == 200
    assert names(body) == ["a", "b", "c"]
    assert "continue" not in body["metadata"]
    _, paged = await api.get(CMS, params={"limit": "1"})
    assert names(paged) == ["a"] and paged["metadata"]["continue"]


async def test_a_watch_ignores_limit(api: Api) -> None:
    await configmaps(api, a={}, b={}, c={})
    api.server.max_watch_timeout = 0.15
    async with api.session.get(CMS, params={"watch": "true", "limit": "1"}) as resp:
        events = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert [e["object"]["metadata"]["name"] for e in events] == ["a", "b", "c"]
