from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from events.backends import open_store
from events.store import EventStore
from projections.rebuild import projections
from tests.api import AiohttpClient, Api, make_api
from tests.databases import Database, backend_params, fresh

# `pytest --hypothesis-profile=no-shrink` reports the first failing example at once.
settings.register_profile("no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture(params=backend_params())
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: a test that takes it runs once per backend."""
    return str(request.param)


@pytest.fixture
def database(backend_name: str, tmp_path: Path) -> Iterator[Database]:
    """A fresh database of each backend."""
    with fresh(backend_name, tmp_path) as db:
        yield db


@pytest.fixture
async def store(database: Database) -> AsyncIterator[EventStore]:
    """A store, with the service's projections, on a fresh database of each backend."""
    opened = await open_store(database.url, projections=projections())
    yield opened
    await opened.close()


@pytest.fixture
async def api(database: Database, aiohttp_client: AiohttpClient) -> Api:
    """A real server on a fresh database of each backend, with tokens of each scope. The
    database comes first so that it is dropped after the server (and its store) has closed."""
    return await make_api(aiohttp_client, database.url)
