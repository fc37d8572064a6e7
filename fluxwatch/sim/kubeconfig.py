"""A kubeconfig that points kubectl or any Kubernetes client at the emulator."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "fluxwatch-sim"


def kubeconfig(
    server: str,
    token: str,
    namespace: str = "default",
    context: str = CONTEXT,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """A one-cluster, one-user, one-context kubeconfig with a bearer token; ``ca_pem``
    is the certificate an ``https://`` server is verified with."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
    }


def write_kubeconfig(
    path: Path,
    server: str,
    token: str,
    namespace: str = "default",
    context: str = CONTEXT,
    ca_pem: bytes | None = None,
) -> Path:
    """Write the kubeconfig readable by its owner only (it holds a token)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(kubeconfig(server, token, namespace, context, ca_pem), fh, sort_keys=False)
    return path
