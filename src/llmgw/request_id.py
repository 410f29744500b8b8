"""Request ids: the client's when it sent a sane one, else a new one."""

from __future__ import annotations

import re
import secrets

_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header: str | None) -> str:
    if header is not None and _SANE.fullmatch(header):
        return header
    return "req_" + secrets.token_hex(12)
