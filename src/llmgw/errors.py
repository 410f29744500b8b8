"""The gateway's error hierarchy: raised deep, rendered once at the edge in OpenAI's error shape."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    """An error the client sees. Subclasses fix the HTTP status and OpenAI error type."""

    status: int = 500
    error_type: str = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)

    def json(self) -> bytes:
        return orjson.dumps(self.body())


# The statuses a retry of the same request may turn into a success (OpenAI's SDKs retry
# exactly these, unless `x-should-retry` says otherwise).
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Codes that no retry changes, whatever their status.
_PERMANENT_CODES = frozenset({"no_provider_configured"})


def retry_can_help(status: int, code: str | None = None) -> bool:
    """Whether sending the same request again may succeed: the answer carries
    `x-should-retry: false` when it cannot, so that clients stop retrying what only a change of
    request or configuration can fix."""
    if code in _PERMANENT_CODES:
        return False
    return status in _RETRYABLE_STATUSES or status >= 500


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    error_type = "invalid_request_error"
    default_code = "method_not_allowed"


class RequestTimeout(GatewayError):
    status = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    error_type = "invalid_request_error"
    default_code = "unsupported_media_type"


class InternalError(GatewayError):
    status = 500
    error_type = "server_error"
    default_code = "internal_error"


class AllRoutesRateLimited(GatewayError):
    """Every route that could serve the request is rate-limited."""

    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class NoRouteAvailable(GatewayError):
    """No route could serve the request: none configured, circuits open, or every attempt failed."""

    status = 503
    error_type = "server_error"
    default_code = "no_provider_available"


class ProviderRefusal(GatewayError):
    """What a provider answered about the request itself (invalid, too long, filtered, not
    supported), passed on in OpenAI's shape with the provider's status and words."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.status = status
        self.error_type = error_type
