"""The checks an endpoint makes before it does any work: the client's key and, for a body it
parses, the content type. Plain calls, made by each endpoint, first thing."""

from __future__ import annotations

from quart import request

from llmgw.auth import BASIC_AUTH_PATHS, OPEN_PATHS, key_matches, presented_key
from llmgw.errors import AuthenticationFailed, UnsupportedMediaType


def authenticate(keys: tuple[str, ...]) -> None:
    """Raise AuthenticationFailed unless no keys are configured, the path is open, or the
    request presents one of the keys."""
    if not keys:
        return
    path = request.path
    if path in OPEN_PATHS:
        return
    key = presented_key(path, request.headers.get("authorization"))
    if key is not None and key_matches(key, keys):
        return
    challenge = 'Basic realm="llmgw"' if path in BASIC_AUTH_PATHS else "Bearer"
    message = (
        "missing API key: send 'Authorization: Bearer <key>'" if key is None else "invalid API key"
    )
    raise AuthenticationFailed(message, headers={"WWW-Authenticate": challenge})


async def json_body() -> bytes:
    """The request body, which must say it is JSON or say nothing. Its size and arrival time are
    bounded by MAX_CONTENT_LENGTH and BODY_TIMEOUT (413 and 408, rendered by the app)."""
    # From the raw headers: werkzeug's case-insensitive lookup costs more than the whole check.
    raw = next((v for k, v in request.scope["headers"] if k == b"content-type"), b"")
    mimetype = raw.decode("latin-1").split(";", 1)[0].strip().lower()
    if mimetype and mimetype != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {mimetype}",
            headers={"Accept-Post": "application/json"},
        )
    return await request.get_data(cache=False, as_text=False, parse_form_data=False)
