"""`timeline copy`: a whole log moved between backends, as a user runs it."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from events.backends import open_store
from events.store import Head
from projections.rebuild import projections
from tests.databases import fresh, needs_postgres
from tests.factories import batch, event_in
from tests.timeline.test_cli import run
from timeline.commands.serving import load_seeds

GENERATED = 100_000


async def _fill(url: str) -> None:
    """The seed timeline, then GENERATED events in batches of 1000, with amendments."""
    store = await open_store(url, projections=projections())
    try:
        await load_seeds(store)
        rng = random.Random(7)
        companies = [f"company-{n}" for n in range(40)]
        launched: list[tuple[str, str]] = []
        for _ in range(GENERATED // 1000):
            bodies = []
            for _ in range(1000):
                if launched and rng.random() < 0.05:
                    target, company = launched.pop(rng.randrange(len(launched)))
                    data = {"target": target, "reason": "denied"}
                    bodies.append(event_in(company=company, type="event.retracted", data=data))
                else:
                    company = rng.choice(companies)
                    body = event_in(company=company, occurred=f"2023-{rng.randint(1, 12):02d}")
                    launched.append((body["id"], company))
                    bodies.append(body)
            await store.append(batch(*bodies))
    finally:
        await store.close()


async def _snapshot(url: str) -> list[object]:
    """The log's head and both projections' tables, as a reader would compare them."""
    store = await open_store(url, projections=projections(), create=False)
    try:
        return [
            await store.head(),
            await store.query("SELECT * FROM facts ORDER BY position, sys_from"),
            await store.query("SELECT * FROM companies ORDER BY company"),
        ]
    finally:
        await store.close()


@needs_postgres
def test_sqlite_to_postgresql_to_sqlite_reproduces_the_digest(tmp_path: Path) -> None:
    source, back = f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'back.db'}"
    asyncio.run(_fill(source))
    expected = asyncio.run(_snapshot(source))
    head = expected[0]
    assert isinstance(head, Head) and head.position > GENERATED
    digest = f"position {head.position}, hash {head.hash}"
    with fresh("postgres") as middle:
        code, out, err = run("copy", "--from", source, "--to", middle.url, timeout=600)
        assert code == 0, err
        assert f"copied {head.position} events (0 already present" in out
        assert digest in out
        code, out, err = run("copy", "--from", middle.url, "--to", back, timeout=600)
        assert code == 0, err
        assert digest in out
        assert asyncio.run(_snapshot(middle.url)) == expected
        assert asyncio.run(_snapshot(back)) == expected
        code, out, err = run("verify", "--db", middle.url)
        assert code == 0, err
        # Copying again finds everything there already.
        code, out, err = run("copy", "--from", source, "--to", middle.url, timeout=600)
        assert code == 0, err
        assert "copied 0 events" in out


def test_a_copy_goes_on_where_it_stopped_and_refuses_another_log(tmp_path: Path) -> None:
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"

    async def prepare() -> None:
        for url, count in ((source, 30), (target, 0), (other, 5)):
            store = await open_store(url, projections=projections())
            events = [event_in(company="baidu") for _ in range(count)]
            if events:
                await store.append(batch(*events))
            if url == source:  # the target holds the start of the source's log
                half = await store.read(limit=12)
                destination = await open_store(target, projections=projections())
                await destination.restore(half)
                await destination.close()
            await store.close()

    asyncio.run(prepare())
    code, out, err = run("copy", "--from", source, "--to", target, "--batch", "7")
    assert code == 0, err
    assert "copied 18 events (12 already present" in out
    code, out, err = run("copy", "--from", source, "--to", other)
    assert code == 1
    assert "stored with other content" in err
    code, out, err = run("copy", "--from", f"sqlite:///{tmp_path / 'none.db'}", "--to", target)
    assert code == 2
    assert "no database at" in err
