"""Flux's certSecretRef and proxySecretRef, read from the embedded cluster in the Provider's
namespace, used for real TLS and a real proxy hop.

The Provider is a whole Flux object (metadata.namespace ``flux-system``), so its
Secrets are read there, as notification-controller reads them.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from test_notify_providers import EVENT, WIRE, Pki, pki  # noqa: F401 - pki is a fixture
from test_notify_receiver import Receiver

from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.patch import KubeSecretReader
from fluxwatch.notify.config import ProviderSpec
from fluxwatch.notify.factory import UnavailableProvider, open_provider
from fluxwatch.notify.providers import ProviderDeps
from fluxwatch.notify.transport import RetryPolicy, Transport
from fluxwatch.sim.apiserver import ApiServer

NAMESPACE = "flux-system"


def create_secret(apiserver: ApiServer, name: str, data: dict[str, str | bytes]) -> None:
    encoded = {
        k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()
        for k, v in data.items()
    }
    apiserver.store.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": encoded,
        },
    )


def provider(**spec: Any) -> ProviderSpec:
    return ProviderSpec.model_validate(
        {
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
            "kind": "Provider",
            "metadata": {"name": "webhook", "namespace": NAMESPACE},
            "spec": {"type": "generic", **spec},
        }
    )


@pytest.fixture
async def reader(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[KubeSecretReader]:
    client = await KubeClient.from_config(apiserver.write_kubeconfig(tmp_path / "kubeconfig"))
    yield KubeSecretReader(client)
    await client.close()


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport(retry=RetryPolicy(max_retries=0))
    yield t
    await t.close()


async def test_cert_secret_ref_gives_the_ca_and_the_client_certificate(
    apiserver: ApiServer,
    reader: KubeSecretReader,
    transport: Transport,
    pki: Pki,  # noqa: F811 - the fixture imported above
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_file))
    context.load_cert_chain(pki.server_crt, pki.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    async with Receiver(ssl_context=context) as receiver:
        create_secret(
            apiserver,
            "webhook-tls",
            {"ca.crt": pki.ca_crt, "tls.crt": pki.client_crt, "tls.key": pki.client_key},
        )
        spec = provider(address=receiver.url + "/hook", certSecretRef={"name": "webhook-tls"})
        # fluxwatch's own namespace is elsewhere: the Provider's namespace decides.
        built = await open_provider(
            spec, ProviderDeps(transport), namespace="fluxwatch-system", secret_reader=reader
        )
        assert not isinstance(built, UnavailableProvider), built.reason
        await built.post(EVENT)
    (request,) = receiver.requests
    assert request.json() == WIRE
    assert request.peer_cert is not None
    assert request.peer_cert["subject"] == ((("commonName", "fluxwatch"),),)


async def test_cert_secret_ref_without_tls_keys_names_the_field(
    apiserver: ApiServer, reader: KubeSecretReader, transport: Transport
) -> None:
    create_secret(apiserver, "not-tls", {"token": "x"})
    spec = provider(address="https://example.invalid", certSecretRef={"name": "not-tls"})
    built = await open_provider(spec, ProviderDeps(transport), secret_reader=reader)
    assert isinstance(built, UnavailableProvider)
    assert built.reason.startswith("provider 'webhook': certSecretRef: Secret flux-system/not-tls")
    assert "needs ca.crt, or tls.crt with tls.key" in built.reason


async def test_proxy_secret_ref_sends_through_the_proxy_with_its_credentials(
    apiserver: ApiServer, reader: KubeSecretReader, transport: Transport
) -> None:
    async with Receiver() as proxy:
        create_secret(
            apiserver,
            "corp-proxy",
            {"address": proxy.url, "username": "fluxwatch", "password": "pr0xy-pass"},
        )
        target = "http://hooks.example.com/flux"
        spec = provider(address=target, proxySecretRef={"name": "corp-proxy"})
        built = await open_provider(spec, ProviderDeps(transport), secret_reader=reader)
        assert not isinstance(built, UnavailableProvider), built.reason
        await built.post(EVENT)
        assert "pr0xy-pass" not in repr(built)
    (request,) = proxy.requests
    assert request.url == target
    assert request.headers["Proxy-Authorization"] == (
        "Basic " + base64.b64encode(b"fluxwatch:pr0xy-pass").decode()
    )
    assert request.json() == WIRE


async def test_proxy_secret_ref_needs_an_address(
    apiserver: ApiServer, reader: KubeSecretReader, transport: Transport
) -> None:
    create_secret(apiserver, "no-address", {"username": "u"})
    spec = provider(address="http://x.example", proxySecretRef={"name": "no-address"})
    built = await open_provider(spec, ProviderDeps(transport), secret_reader=reader)
    assert isinstance(built, UnavailableProvider)
    assert "proxySecretRef needs key 'address'" in built.reason
