"""Error answers worded as kube-apiserver words them: clients and people read these."""

from __future__ import annotations

import yaml

from tests.conformance.conftest import Api


async def test_an_unacceptable_media_type_is_406_listing_what_the_server_speaks(api: Api) -> None:
    code, body = await api.get("/api/v1/configmaps", headers={"Accept": "text/html"})
    assert code == 406
    assert body["reason"] == "NotAcceptable"
    assert body["message"] == (
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )


async def test_yaml_is_answered_when_asked_for(api: Api) -> None:
    code, text = await api.get("/api/v1/namespaces/default", headers={"Accept": "application/yaml"})
    assert code == 200
    doc = yaml.safe_load(text)
    assert doc["kind"] == "Namespace" and doc["metadata"]["name"] == "default"


async def test_a_continue_token_that_is_not_base64_is_400_invalid_continue_token(
    api: Api,
) -> None:
    code, body = await api.get("/api/v1/configmaps?limit=1&continue=not*base64")
    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        "invalid continue token: continue key is not valid: illegal base64 data at input byte 3"
    )


async def test_a_continue_token_of_an_unknown_encoding_version_is_400(api: Api) -> None:
    import base64

    token = base64.urlsafe_b64encode(b'{"v":"x/v9","rv":5,"start":"a"}').rstrip(b"=").decode()
    code, body = await api.get(f"/api/v1/configmaps?limit=1&continue={token}")
    assert code == 400
    assert body["message"] == (
        "invalid continue token: continue key is not valid: server does not recognize this "
        "encoded version x/v9"
    )


async def test_a_continue_token_with_a_resource_version_is_400(api: Api) -> None:
    for name in ("a", "b"):
        await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": name}})
    _, page = await api.get("/api/v1/namespaces/default/configmaps?limit=1")
    token = page["metadata"]["continue"]
    code, body = await api.get(
        f"/api/v1/namespaces/default/configmaps?limit=1&continue={token}&resourceVersion=5"
    )
    assert code == 400
    assert body["message"] == "specifying resource version is not allowed when using continue"


async def test_a_body_in_an_unknown_format_is_415(api: Api) -> None:
    code, body = await api.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        data=b"name: x",
        headers={"Content-Type": "text/plain"},
    )
    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml"
    )


async def test_an_unknown_resource_is_404_the_server_could_not_find(api: Api) -> None:
    code, body = await api.get("/apis/example.com/v1/widgets")
    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == "the server could not find the requested resource"
