from pathlib import Path

import pytest
from hypothesis import Phase, settings

from tests.api import AiohttpClient, Api, make_api

# `pytest --hypothesis-profile=no-shrink` reports the first failing example at once.
settings.register_profile("no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, tmp_path: Path) -> Api:
    """A real server on a fresh database, with tokens of each scope."""
    return await make_api(aiohttp_client, tmp_path)
