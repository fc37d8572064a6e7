"""Listen addresses (``--metrics-addr``, ``--health-addr``): parsed once, bound dual-stack.

The spelling is Go's, as Flux's controllers take it: ``[host]:port``, an IPv6
literal in brackets. What each host means, as in Go's ``net.Listen("tcp", ...)``:

- empty (``:8080``) or ``[::]``: every address of both families, through one
  IPv6 socket that also accepts IPv4 (``IPV6_V6ONLY`` off); on a host without
  IPv6, the IPv4 wildcard ``0.0.0.0`` alone;
- ``0.0.0.0``: every IPv4 address, no IPv6;
- an IP literal (``127.0.0.1``, ``[::1]``): that address;
- a name (``localhost``): every address it resolves to.

:func:`parse_listen_addr` is pure so that settings validation (``fluxwatch
check-config``) refuses a bad address with its reason instead of the daemon
failing at bind time; :func:`bind` makes the listening sockets.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from dataclasses import dataclass

# RFC 1123 host names, which is what getaddrinfo would be asked to resolve.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
# The errors that say "this host has no IPv6", after which IPv4 alone is the wildcard.
_NO_IPV6 = {errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT}


@dataclass(frozen=True)
class ListenAddr:
    """A parsed ``[host]:port``; ``host`` is ``""`` for the dual-stack wildcard."""

    host: str
    port: int

    @property
    def wildcard(self) -> bool:
        return self.host in ("", "::")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_listen_addr(value: str) -> ListenAddr:
    """``[host]:port`` as Go spells it, or a ValueError saying what is wrong and what is
    expected."""
    expected = "expected [host]:port like ':8080', '0.0.0.0:8080' or '[::]:8080'"
    if value.startswith("["):
        literal, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{expected}, got {value!r}: no ']:' after the IPv6 address")
        host, port = literal, rest[1:]
        try:
            if ipaddress.ip_address(host).version != 6:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{expected}, got {value!r}: {host!r} in brackets is not an IPv6 address"
            ) from None
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            raise ValueError(f"{expected}, got {value!r}: no port")
        if ":" in host:
            raise ValueError(
                f"{expected}, got {value!r}: an IPv6 address goes in brackets, "
                f"like '[{host}]:{port}'"
            )
        if host and not _valid_host(host):
            raise ValueError(f"{expected}, got {value!r}: {host!r} is not an IPv4 address or name")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{expected}, got {value!r}: the port must be 0 to 65535")
    return ListenAddr("" if host == "::" else host, int(port))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        # Four dotted numbers that are not an address (256.1.1.1) are a typo, not a name.
        return not re.fullmatch(r"[\d.]+", host) and bool(_NAME.match(host))
    return True


def bind(addr: ListenAddr) -> list[socket.socket]:
    """Listening sockets for ``addr``, non-blocking, ready for ``loop.create_server(sock=...)``.

    Names resolve to every address; the wildcard is one dual-stack socket where the
    host has IPv6. An address in use or not on this host raises OSError naming it.
    """
    if addr.wildcard:
        try:
            return [_listen(socket.AF_INET6, "::", addr.port, v6only=False)]
        except OSError as exc:
            if exc.errno not in _NO_IPV6:
                raise _named(exc, addr) from exc
        return [_listen(socket.AF_INET, "0.0.0.0", addr.port)]
    infos = socket.getaddrinfo(
        addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, str]] = set()
    port = addr.port
    try:
        for family, _type, _proto, _name, sockaddr in infos:
            host = (int(family), str(sockaddr[0]))
            if host in seen:
                continue
            seen.add(host)
            # A name with several addresses and port 0 shares the port the first one got.
            sock = _listen(family, host[1], port, v6only=True)
            port = sock.getsockname()[1]
            sockets.append(sock)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise _named(exc, addr) from exc
    return sockets


def _listen(family: int, host: str, port: int, *, v6only: bool = True) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _named(exc: OSError, addr: ListenAddr) -> OSError:
    return OSError(exc.errno, f"cannot listen on {addr}: {exc.strerror or exc}")


__all__ = ["ListenAddr", "bind", "parse_listen_addr"]
