"""The checks a request passes before any handler sees it: the client's key and the content
type. Shared by the Quart hooks and the plain ASGI chat handler, so both refuse alike."""

from __future__ import annotations

from llmgw.auth import BASIC_AUTH_PATHS, OPEN_PATHS, key_matches, presented_key
from llmgw.errors import AuthenticationFailed, UnsupportedMediaType


def authenticate(path: str, authorization: str | None, keys: tuple[str, ...]) -> None:
    """Raise AuthenticationFailed unless no keys are configured, the path is open, or the
    request presents one of the keys."""
    if not keys or path in OPEN_PATHS:
        return
    key = presented_key(path, authorization)
    if key is not None and key_matches(key, keys):
        return
    challenge = 'Basic realm="llmgw"' if path in BASIC_AUTH_PATHS else "Bearer"
    message = (
        "missing API key: send 'Authorization: Bearer <key>'"
        if key is None
        else ("invalid API key")
    )
    raise AuthenticationFailed(message, headers={"WWW-Authenticate": challenge})


def require_json(content_type: str | None) -> None:
    """A body we parse as JSON must say it is JSON, or say nothing."""
    mimetype = (content_type or "").split(";", 1)[0].strip().lower()
    if mimetype and mimetype != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, not {mimetype}",
            headers={"Accept-Post": "application/json"},
        )
