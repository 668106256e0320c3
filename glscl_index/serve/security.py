"""Who may reach the server: loopback only unless a token guards every request."""

from __future__ import annotations

import hmac

from glscl_index.errors import InvalidOptionError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (the server reads any indexed file)."""
    if host not in LOOPBACK_HOSTS and not token:
        raise InvalidOptionError(
            f"--host {host} makes your videos reachable from other machines; add --token SECRET "
            f"(clients then send 'Authorization: Bearer SECRET', or open the page as /?token=SECRET)"
        )


def token_matches(expected: str, authorization: str | None, query_token: str | None) -> bool:
    """The request's ``Authorization: Bearer T`` header or ``?token=T`` equals ``expected`` (constant time)."""
    offered = ""
    if authorization and authorization.lower().startswith("bearer "):
        offered = authorization[len("bearer ") :].strip()
    elif query_token:
        offered = query_token
    return bool(offered) and hmac.compare_digest(offered.encode(), expected.encode())
