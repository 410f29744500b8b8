"""What an upstream answer means for the client and for the route: the failover policy."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """How one upstream attempt ended. The values are recorded in metrics."""

    SUCCESS = "success"
    CLIENT_ERROR = (
        "client_error"  # the upstream refused the request itself: goes back to the client
    )
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"  # 5xx
    AUTH_ERROR = "auth_error"  # 401/403: our key is wrong or not allowed
    NOT_FOUND = "not_found"  # 404: the model (or base URL) is wrong on our side
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    INVALID_RESPONSE = "invalid_response"  # unparseable body, error inside a 200, broken stream
    CLIENT_CANCELLED = "client_cancelled"
    # The request's own deadline ran out during this attempt: the gateway's limit, not a
    # verdict on the provider.
    DEADLINE_EXCEEDED = "deadline_exceeded"
    # Something in the gateway failed for this route (an exception nobody planned for, such as
    # a key that cannot go into a header): the route is unusable, the next one may not be.
    GATEWAY_ERROR = "gateway_error"

    @property
    def fails_over(self) -> bool:
        return self not in _FINAL

    @property
    def is_provider_failure(self) -> bool:
        """Counts against the route's circuit."""
        return self.fails_over and self is not Outcome.DEADLINE_EXCEEDED


_FINAL = frozenset({Outcome.SUCCESS, Outcome.CLIENT_ERROR, Outcome.CLIENT_CANCELLED})


# Client errors the upstream reports about the request itself; 408 and 409 are the provider's
# trouble, not the client's, and fail over like a 5xx.
_CLIENT_ERRORS = frozenset({400, 413, 415, 422})


def classify_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 403):
        return Outcome.AUTH_ERROR
    if status == 404:
        return Outcome.NOT_FOUND
    if status in _CLIENT_ERRORS:
        return Outcome.CLIENT_ERROR
    if status >= 500 or status in (408, 409):
        return Outcome.UPSTREAM_ERROR
    # Any other 4xx (402 payment required, 451, ...) is the route's problem, not the client's.
    return Outcome.UPSTREAM_ERROR
