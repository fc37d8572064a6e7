"""A self-signed certificate for serving the emulator over TLS on loopback.

kubectl (client-go's clientcmd) sends a kubeconfig's credentials only over TLS:
against an ``http://`` server its requests carry no token at all. The emulator
therefore serves HTTPS when kubectl must authenticate, with a throwaway
certificate made once per process by the ``openssl`` command.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path


class CertificateError(RuntimeError):
    """No certificate could be made (``openssl`` missing or failing)."""


@cache
def self_signed() -> tuple[Path, Path]:
    """(certificate, key) PEM files valid for 127.0.0.1, ::1 and localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("serving TLS needs the openssl command, which is not installed")
    folder = Path(tempfile.mkdtemp(prefix="fluxwatch-sim-tls-"))
    cert, key = folder / "tls.crt", folder / "tls.key"
    cmd = [
        openssl, "req", "-x509", "-nodes", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "3650",
        "-subj", "/CN=fluxwatch-sim",
        "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CertificateError(f"openssl could not make a certificate: {done.stderr.strip()}")
    return cert, key
