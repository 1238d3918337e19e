"""Refuse to serve every document to the network by accident.

With no API keys, anyone who reaches the port reads every document and asks anything; on a
loopback address that is only this machine's users, anywhere else it is the whole network. So
`chancery serve` checks, before it binds, that an address other than loopback comes with keys,
or with `--insecure`, which says the operator knows (a test network, a proxy that authenticates).
"""

from __future__ import annotations

import ipaddress

from service.errors import ChanceryError

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class InsecureBindError(ChanceryError):
    """Serving beyond this machine without keys."""

    status = 500
    exit_code = 2


def is_loopback(host: str) -> bool:
    """Whether `host` (a literal address, `[::1]`, or `localhost`) is reachable from this
    machine only. Other names count as not loopback: what they resolve to can change."""
    name = host.strip().lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys_exist: bool, insecure: bool) -> None:
    """Raise InsecureBindError when serving on `host` would open every document to the
    network: not loopback, no keys, and no `--insecure`."""
    if keys_exist or insecure or is_loopback(host):
        return
    raise InsecureBindError(
        f"refusing to listen on {host} with no API keys, since anyone who can reach it could "
        "read every document: create a key with `chancery keys create`, listen on 127.0.0.1 "
        "behind a proxy, or pass --insecure if this network is trusted"
    )
