"""Cross-origin resource sharing: which browser pages may call the gateway, and the headers that
tell the browser so. Pure: request headers in, response headers out; the edge applies them.

A browser asks before a cross-origin request that is not "simple" (a JSON body, an
`Authorization` header): an `OPTIONS` preflight naming the method and headers it wants to send.
A preflight never carries the client's key, so it is answered before any key check, on every
path. The answer itself then carries `Access-Control-Allow-Origin`, and the headers a page may
read beyond the few a browser always shows (`Access-Control-Expose-Headers`): without that, a
page could not read `X-Request-ID` or, on a 429, `Retry-After`. (The Fetch standard, "CORS
protocol": https://fetch.spec.whatwg.org/#http-cors-protocol.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]

ALLOWED_METHODS = b"GET, POST, OPTIONS"
# Asked for when a preflight names none; `Authorization` is never covered by a `*` wildcard.
DEFAULT_ALLOWED_HEADERS = b"authorization, content-type, x-request-id"
# What a page may read of an answer; the OpenAI SDKs read the last three to decide on retries.
EXPOSED_HEADERS = (
    b"x-request-id, x-provider, x-response-time-ms, retry-after, retry-after-ms, x-should-retry"
)
# How long a browser may reuse a preflight's answer (Chromium caps it at two hours).
MAX_AGE_SECONDS = b"7200"
# A header list a preflight may ask for: tokens separated by commas (RFC 9110, section 5.6.2).
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HEADER_LIST = re.compile(_TOKEN + rb"(?:[ \t]*,[ \t]*" + _TOKEN + rb")*")


@dataclass(frozen=True)
class Preflight:
    """What a preflight asks: from its `Access-Control-Request-*` headers."""

    headers: bytes = b""
    private_network: bool = False


@dataclass(frozen=True)
class CorsPolicy:
    """The origins of CORS_ALLOW_ORIGINS, or any origin (`*`)."""

    origins: frozenset[str]
    any_origin: bool = False

    @classmethod
    def from_setting(cls, origins: tuple[str, ...]) -> CorsPolicy | None:
        """None when CORS is off (no origin configured)."""
        if not origins:
            return None
        return cls(frozenset(origins), any_origin="*" in origins)

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _allow_origin(self, origin: str) -> Headers:
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        # The answer depends on the asking origin: caches must key on it.
        return [(b"access-control-allow-origin", origin.encode()), (b"vary", b"origin")]

    def preflight(self, origin: str, asked: Preflight) -> Headers:
        """The headers of the 204 that answers an allowed origin's preflight."""
        headers = self._allow_origin(origin)
        requested = asked.headers.strip()
        allowed = requested if _HEADER_LIST.fullmatch(requested) else DEFAULT_ALLOWED_HEADERS
        headers += [
            (b"access-control-allow-methods", ALLOWED_METHODS),
            (b"access-control-allow-headers", allowed),
            (b"access-control-max-age", MAX_AGE_SECONDS),
        ]
        if asked.private_network:
            # A public page calling a gateway on a private address (Private Network Access).
            headers.append((b"access-control-allow-private-network", b"true"))
        # The allowed headers echo the asked ones: caches must key on them too.
        headers.append((b"vary", b"access-control-request-headers"))
        return headers

    def response(self, origin: str) -> Headers:
        """The headers every other answer to an allowed origin carries, errors and streams too."""
        return [*self._allow_origin(origin), (b"access-control-expose-headers", EXPOSED_HEADERS)]
