"""Public model names that stand for several provider/model pairs: a group and how it orders
them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Strategy(enum.Enum):
    FALLBACK = "fallback"  # in the order given: the first healthy member serves
    ROUND_ROBIN = "round_robin"  # each request starts at the next member
    WEIGHTED = "weighted"  # requests start at members in proportion to their weights
    MOST_QUOTA_LEFT = "most_quota_left"  # the member with the most of its quota left first


@dataclass(frozen=True)
class Member:
    provider: str
    model: str
    weight: int = 1

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class Group:
    name: str
    members: tuple[Member, ...]
    strategy: Strategy = Strategy.FALLBACK
    free_only: bool = False  # only members declared free may serve
