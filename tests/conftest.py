"""Fixtures that start real servers on 127.0.0.1. Helpers the tests share live in tests/support."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter
from tests.support.redis_server import RedisServer, redis_server


@pytest.fixture
def start_fake(nursery: trio.Nursery) -> FakeStarter:
    async def start(name: str = "fake", default: Behaviour | None = None) -> FakeProvider:
        fake = FakeProvider(name, default)
        await nursery.start(fake.serve)
        return fake

    return start


@pytest.fixture
async def two(start_fake: FakeStarter) -> tuple[FakeProvider, FakeProvider]:
    """Two fake providers, serving as groq and cerebras."""
    return await start_fake("groq"), await start_fake("cerebras")


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    """A real redis-server on a free port, saving nothing; stopped at the end."""
    async with redis_server() as server:
        yield server
