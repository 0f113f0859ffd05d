"""`timeline export` and `timeline import`, run as a user would: real processes, real files."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from events.sqlite import SQLiteEventStore
from events.validation import validate_body
from projections import state
from projections.rebuild import projections
from tests.factories import event_in, history
from tests.timeline.test_cli import ROOT, TIMELINE
from timeline.transfer import export

SEEDS = ROOT / "seeds" / "big-models-2023.ndjson"
SEED = len(SEEDS.read_text(encoding="utf-8").splitlines())  # the seed timeline's events
TOTAL = SEED + 9  # and the history `source` appends
CLOUDEVENT_KEYS = {
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "sequence",
    "data",
}


def timeline(*args: str | Path, stdin: str | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [*TIMELINE, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def head_of(path: Path) -> int:
    """The head position of a log whose chain holds."""

    async def check() -> int:
        store = await SQLiteEventStore.open(path)
        try:
            assert await store.verify() is None
            return (await store.head()).position
        finally:
            await store.close()

    return asyncio.run(check())


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of the seed timeline followed by corrections, retractions and a reinstatement."""
    path = tmp_path_factory.mktemp("source") / "source.db"

    async def fill() -> None:
        store = await SQLiteEventStore.open(path, projections=projections())
        lines = SEEDS.read_text(encoding="utf-8").splitlines()
        await store.append(validate_body({"events": [json.loads(line) for line in lines]}))
        await history(store)
        await store.close()

    asyncio.run(fill())
    return path


@pytest.fixture(scope="module")
def exported(source: Path) -> dict[str, Path]:
    files = {}
    for style in ("ndjson", "cloudevents"):
        files[style] = source.with_name(f"log.{style}")
        code, out, err = timeline(
            "export", "--db", url(source), "--format", style, "--output", files[style]
        )
        assert (code, out) == (0, "")
        assert (
            f"exported {TOTAL} events (positions 1 to {TOTAL}) as {style} to {files[style]}" in err
        )
    return files


async def _answers(path: Path) -> list[Any]:
    """The log, its head, and what the projections answer at two points of transaction time."""
    store = await SQLiteEventStore.open(path, projections=projections())
    try:
        head = await store.head()
        found: list[Any] = [head, await store.read(limit=10_000)]
        for position in (40, 60, head.position):
            known = await state.resolve(store, position)
            found.append(await state.companies(store, position))
            for company in ("baidu", "alibaba", "tencent"):
                for as_of in (date(2023, 3, 31), date(2023, 12, 31)):
                    found.append(
                        await state.company_state(
                            store, company, as_of, known, include_possible=True
                        )
                    )
                    found.append(await state.timeline(store, company, as_of, known))
    finally:
        await store.close()
    return found


def answers(path: Path) -> list[Any]:
    return asyncio.run(_answers(path))


@pytest.mark.parametrize("style", ["ndjson", "cloudevents"])
def test_an_export_imported_into_an_empty_database_restores_the_log(
    source: Path, exported: dict[str, Path], tmp_path: Path, style: str
) -> None:
    restored = tmp_path / "restored.db"
    code, out, _ = timeline("import", exported[style], "--db", url(restored))
    assert code == 0
    assert f"{TOTAL} events stored, 0 already present; the log's head is {TOTAL}" in out
    # The same chain digest, entries, and projection answers (state as of, timeline, companies).
    assert answers(restored) == answers(source)
    code, out, _ = timeline("verify", "--db", url(restored))
    assert code == 0
    assert out.startswith(f"chain holds: {TOTAL} events")
    # Restoring again is a no-op.
    code, out, _ = timeline("import", exported[style], "--db", url(restored), "--batch", "7")
    assert code == 0
    assert f"0 events stored, {TOTAL} already present; the log's head is {TOTAL}" in out


def test_ndjson_lines_are_the_events_as_the_api_returns_them(
    source: Path, exported: dict[str, Path]
) -> None:
    lines = exported["ndjson"].read_text(encoding="utf-8").splitlines()

    async def read() -> list[str]:
        store = await SQLiteEventStore.open(source)
        events = await store.read(limit=1000)
        await store.close()
        return [event.to_json() for event in events]

    assert lines == asyncio.run(read())


def test_cloudevents_lines(source: Path, exported: dict[str, Path]) -> None:
    code, out, err = timeline("export", "--db", url(source), "--format", "cloudevents")
    assert code == 0
    assert "to standard output" in err
    assert out == exported["cloudevents"].read_text(encoding="utf-8")
    events = [json.loads(line) for line in out.splitlines()]
    recorded = [json.loads(line) for line in exported["ndjson"].read_text().splitlines()]
    for cloud, event in zip(events, recorded, strict=True):
        assert set(cloud) == CLOUDEVENT_KEYS
        assert cloud["specversion"] == "1.0"
        assert cloud["id"] == event["id"]
        assert cloud["source"] == f"/timeline/companies/{event['company']}"
        assert cloud["type"] == event["type"]
        assert cloud["subject"] == event["company"]
        assert cloud["time"] == event["recorded"]
        assert cloud["datacontenttype"] == "application/json"
        assert re.fullmatch(r"[0-9]{20}", cloud["sequence"])
        assert int(cloud["sequence"]) == event["position"]
        assert cloud["data"] == event
    sequences = [cloud["sequence"] for cloud in events]
    assert sequences == sorted(sequences)  # lexical order is position order (9 < 10 < 100)
    assert [int(sequence) for sequence in sequences] == list(range(1, TOTAL + 1))


async def test_export_pages_through_the_log_up_to_its_head_at_the_start(
    source: Path, exported: dict[str, Path]
) -> None:
    store = await SQLiteEventStore.open(source)
    try:
        whole, pages, done = io.BytesIO(), io.BytesIO(), []
        assert await export(store, whole, format="cloudevents") == range(1, TOTAL + 1)
        written = await export(
            store, pages, format="cloudevents", after=5, progress=done.append, page=7
        )
    finally:
        await store.close()
    assert whole.getvalue() == exported["cloudevents"].read_bytes()
    assert written == range(6, TOTAL + 1)
    assert pages.getvalue().splitlines() == whole.getvalue().splitlines()[5:]
    assert done == sorted({*range(7, TOTAL - 5, 7), TOTAL - 5})  # pages of 7 after 5


def test_an_export_continues_a_prefix_and_refuses_another_log(
    source: Path, exported: dict[str, Path], tmp_path: Path
) -> None:
    lines = exported["ndjson"].read_text(encoding="utf-8").splitlines()
    code, out, err = timeline("export", "--db", url(source), "--after", "20")
    assert code == 0
    assert f"exported {TOTAL - 20} events (positions 21 to {TOTAL})" in err
    assert out.splitlines() == lines[20:]
    tail = write_lines(tmp_path / "tail.ndjson", out.splitlines())
    copy = tmp_path / "copy.db"
    # A tail alone does not continue an empty log.
    code, _, err = timeline("import", tail, "--db", url(copy))
    assert code == 1
    assert "line 1: position 21 does not continue the log, whose head is 0" in err
    # The first 20 lines (CloudEvents this time), then the tail, then all: a resumed restore.
    cloud = exported["cloudevents"].read_text(encoding="utf-8").splitlines()[:20]
    code, out, _ = timeline("import", "-", "--db", url(copy), stdin="\n".join(cloud))
    assert (code, head_of(copy)) == (0, 20)
    code, out, _ = timeline("import", tail, "--db", url(copy))
    assert f"{TOTAL - 20} events stored, 0 already present" in out
    code, out, _ = timeline("import", exported["ndjson"], "--db", url(copy))
    assert f"0 events stored, {TOTAL} already present" in out
    assert answers(copy) == answers(source)
    # Another log (the seeds alone, recorded at another time) is not a prefix of this export.
    other = tmp_path / "other.db"
    assert timeline("import", SEEDS, "--db", url(other))[0] == 0
    code, _, err = timeline("import", exported["ndjson"], "--db", url(other))
    assert code == 1
    assert "line 1: position 1 is stored with other content" in err
    assert head_of(other) == SEED


def test_a_tampered_export_is_refused_naming_the_line(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    lines = exported["ndjson"].read_text(encoding="utf-8").splitlines()
    event = json.loads(lines[36])
    event["confidence"] = "rumored" if event["confidence"] != "rumored" else "confirmed"
    lines[36] = json.dumps(event, ensure_ascii=False)
    tampered = write_lines(tmp_path / "tampered.ndjson", lines)
    restored = tmp_path / "restored.db"
    code, out, err = timeline("import", tampered, "--db", url(restored), "--batch", "10")
    assert (code, out) == (1, "")
    assert "line 37: the hash of position 37 is not the chain's" in err
    assert "nothing from line 31 on was stored; lines 1 to 30 were (30 events stored" in err
    assert head_of(restored) == 30


def test_a_cloudevent_whose_attributes_disagree_with_its_data_is_refused(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    lines = exported["cloudevents"].read_text(encoding="utf-8").splitlines()
    cloudevent = json.loads(lines[4])
    cloudevent["subject"], cloudevent["time"] = "someone-else", "2020-01-01T00:00:00.000000Z"
    lines[4] = json.dumps(cloudevent, ensure_ascii=False)
    code, _, err = timeline(
        "import", write_lines(tmp_path / "ce.ndjson", lines), "--db", url(tmp_path / "r.db")
    )
    assert code == 1
    assert "line 5: the CloudEvent's `subject`, `time` do not match its data" in err
    assert head_of(tmp_path / "r.db") == 0


def test_importing_event_in_lines_twice_stores_them_once(tmp_path: Path) -> None:
    database = url(tmp_path / "seeded.db")
    code, out, _ = timeline("import", SEEDS, "--db", database)
    assert code == 0
    assert f"{SEED} events stored, 0 already present; the log's head is {SEED}" in out
    code, out, _ = timeline("import", SEEDS, "--db", database)
    assert code == 0
    assert f"0 events stored, {SEED} already present; the log's head is {SEED}" in out
    # Lines without an id get one derived from their content: the same again is no duplicate.
    bodies = [event_in(company="zhipu", id=None, data={"model": f"GLM-{i}"}) for i in range(4)]
    lines = [json.dumps(body) for body in bodies]
    text = "\n".join([lines[0], "", lines[1], "  ", *lines[2:], lines[3]]) + "\n"
    code, out, _ = timeline("import", "-", "--db", database, stdin=text)
    assert code == 0
    assert f"4 events stored, 1 already present; the log's head is {SEED + 4}" in out
    reordered = [json.dumps(dict(reversed(body.items())), indent=None) for body in bodies]
    code, out, _ = timeline("import", "-", "--db", database, stdin="\n".join(reordered))
    assert f"0 events stored, 4 already present; the log's head is {SEED + 4}" in out


def test_a_bad_line_stops_the_import_at_its_batch(tmp_path: Path) -> None:
    events = [
        json.dumps(event_in(company=f"company-{i % 3}", data={"model": f"M{i}"})) for i in range(20)
    ]
    bad = json.dumps(event_in(company="baidu", occurred="2023-13", data={"model": "X"}))
    # Lines 3 and 9 are blank; batches of 5 events: lines 1-6, 7-12, then 13-17 with line 16.
    lines = [*events[:2], "", *events[2:7], "", *events[7:13], bad, *events[14:]]
    assert lines[15] == bad
    file = write_lines(tmp_path / "events.ndjson", lines)
    database = tmp_path / "events.db"
    code, out, err = timeline("import", file, "--db", url(database), "--batch", "5")
    assert (code, out) == (1, "")
    assert "line 16: occurred: " in err
    assert "stopped at line 16: nothing from line 13 on was stored" in err
    assert head_of(database) == 10
    # Resumed without the bad line, in other batches (so one mixes stored and new events).
    del lines[15]
    write_lines(file, lines)
    code, out, _ = timeline("import", file, "--db", url(database), "--batch", "7")
    assert code == 0
    assert "9 events stored, 10 already present; the log's head is 19" in out


def test_errors_found_by_the_store_name_their_line(tmp_path: Path) -> None:
    launch = event_in(company="baidu")
    assert (
        timeline("import", "-", "--db", url(tmp_path / "log.db"), stdin=json.dumps(launch))[0] == 0
    )
    unknown = "11111111-1111-1111-1111-111111111111"
    cases = [
        (
            event_in(
                company="baidu", type="event.retracted", data={"target": unknown, "reason": "no"}
            ),
            f"data.target: target {unknown} is not a stored event",
        ),
        (
            event_in(company="alibaba", expected_version=3),
            "company 'alibaba' is at version 0, not 3",
        ),
        ({**launch, "occurred": "2023"}, f"event id {launch['id']} is already stored with other"),
    ]
    for body, reason in cases:
        text = "\n".join([json.dumps(event_in(company="baidu")), json.dumps(body), ""])
        code, _, err = timeline("import", "-", "--db", url(tmp_path / "log.db"), stdin=text)
        assert code == 1
        assert f"line 2: {reason}" in err
    assert head_of(tmp_path / "log.db") == 1


def test_a_file_is_either_event_in_lines_or_an_export(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    recorded = exported["ndjson"].read_text(encoding="utf-8").splitlines()[0]
    for lines, line, message in [
        ([json.dumps(event_in()), recorded], 2, "a recorded event, but line 1 is an EventIn"),
        ([recorded, "", json.dumps(event_in())], 3, "an EventIn, but line 1 is a recorded event"),
        ([recorded, "{not json"], 2, "not a line of JSON"),
        (['{"specversion": "0.3", "data": {}}'], 1, 'specversion "1.0"'),
        ([recorded.replace('"hash"', '"extra":1,"hash"')], 1, "unknown extra"),
    ]:
        code, _, err = timeline(
            "import", "-", "--db", url(tmp_path / "x.db"), stdin="\n".join(lines)
        )
        assert code == 1
        assert f"line {line}: " in err
        assert message in err
    assert head_of(tmp_path / "x.db") == 0


def test_a_version_conflict_names_the_line_whose_expectation_failed(tmp_path: Path) -> None:
    lines = [
        event_in(company="bb", type="company.registered", data={"name": "BB"}, expected_version=0),
        event_in(company="bb", expected_version=1),
        event_in(company="bb", expected_version=7),
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    code, _, err = timeline("import", "-", "--db", url(tmp_path / "log.db"), stdin=text)
    assert code == 1
    assert "line 3: company 'bb' is at version 2, not 7" in err
    assert "Correct the file" in err


@pytest.mark.parametrize("command", [("export",), ("verify",), ("rebuild",)])
def test_reading_commands_refuse_a_database_that_does_not_exist(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo" / "log.db"
    code, out, err = timeline(*command, "--db", url(missing))
    assert code == 2
    assert f"no database at {missing}" in err
    assert out == ""
    assert not missing.exists() and not missing.parent.exists()
