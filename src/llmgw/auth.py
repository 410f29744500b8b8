"""Client authentication against GATEWAY_API_KEYS. Pure: headers in, verdict out."""

from __future__ import annotations

import base64
import hmac

# Paths anyone may reach: load balancers and container health checks carry no key.
OPEN_PATHS = frozenset({"/health"})
# The dashboard is opened by browsers, which can send a key only through HTTP Basic.
BASIC_AUTH_PATHS = frozenset({"/stats/web"})


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def basic_password(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # A str with non-ASCII characters (headers arrive latin-1 decoded) is a ValueError of
        # its own, not a binascii.Error; UnicodeDecodeError is a ValueError too.
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def key_matches(candidate: str, keys: tuple[str, ...]) -> bool:
    """Constant-time: every key is compared, whatever matched, so timing tells nothing."""
    given = candidate.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def presented_key(path: str, authorization: str | None) -> str | None:
    token = bearer_token(authorization)
    if token is None and path in BASIC_AUTH_PATHS:
        token = basic_password(authorization)
    return token
