"""`timeline export` and `timeline import`: the log as NDJSON and back. An export is a backup:
importing it into an empty database restores the log exactly, hash chain included."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any, Literal

from events.canonical import canonical, parse_json
from events.dates import stored_hi
from events.entries import LogEntry, NewEvent
from events.errors import IdConflict, PositionConflict, TimelineError, ValidationFailed
from events.inputs import MAX_BATCH
from events.store import EventStore, Head
from events.validation import validate_body

Format = Literal["ndjson", "cloudevents"]
FORMATS: tuple[Format, ...] = ("ndjson", "cloudevents")
PAGE = 5000
# Wide enough for any position a signed 64-bit column holds, so text order is position order.
SEQUENCE_DIGITS = 20
# Lines without an id get uuid5(IMPORT_IDS, their content): importing them twice stores them once.
IMPORT_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:timeline:import")
# The hashed fields and `hash`: LogEntry's, less the `occurred` range it keeps apart.
RECORDED_FIELDS = frozenset(
    name.removesuffix("_json") for name in LogEntry.__slots__ if name not in ("lo", "hi")
)

Kind = Literal["events", "entries"]
KINDS: dict[Kind, str] = {"events": "an EventIn", "entries": "a recorded event"}
# How far a transfer has got, with no total: the entries export has written, the position copy
# has reached, the bytes an import has read.
Counted = Callable[[int], None]


def sequence(position: int) -> str:
    """The CloudEvents `sequence` of a position: zero-padded, so lexical order is log order."""
    return f"{position:0{SEQUENCE_DIGITS}d}"


def cloudevent(event: LogEntry) -> str:
    """One entry as a CloudEvents 1.0 event in structured JSON, the whole entry as `data`."""
    # Every interpolated value was validated (UUID, slug, type name, timestamp): no escaping.
    return (
        f'{{"specversion":"1.0","id":"{event.id}",'
        f'"source":"/timeline/companies/{event.company}","type":"{event.type}",'
        f'"subject":"{event.company}","time":"{event.recorded}",'
        f'"datacontenttype":"application/json","sequence":"{sequence(event.position)}",'
        f'"data":{event.to_json()}}}'
    )


async def export(
    store: EventStore,
    out: IO[bytes],
    *,
    format: Format = "ndjson",
    after: int = 0,
    progress: Counted | None = None,
    page: int = PAGE,
) -> range:
    """Write the entries after `after` up to the head as it is now, one JSON line each, in
    position order, `page` entries at a time. Returns the positions written."""
    head = (await store.head()).position
    PositionConflict.unless_within(after, head)
    render = LogEntry.to_json if format == "ndjson" else cloudevent
    position = after
    while position < head:
        events = await store.read(after=position, limit=page, until=head)
        if not events:
            break
        out.write("".join([f"{render(event)}\n" for event in events]).encode())
        position = events[-1].position
        if progress is not None:
            progress(position - after)
    return range(after + 1, position + 1)


@dataclass(frozen=True)
class Copied:
    """What a copy did: entries stored in the target, entries it had already, and the two
    logs' heads at the end (equal when the copy is complete and sound)."""

    stored: int
    present: int
    source: Head
    target: Head


async def copy(
    source: EventStore,
    target: EventStore,
    *,
    batch: int = MAX_BATCH,
    progress: Counted | None = None,
) -> Copied:
    """Restore the source's log, up to its head as it is now, into the target, `batch`
    entries per transaction. A target that holds the start of this log already (an
    interrupted copy) goes on from its head; one that holds another log is refused at the
    first entry that differs. Nothing is assumed: the heads are compared at the end."""
    head = await source.head()
    start = (await target.head()).position
    if start > head.position:
        raise PositionConflict(
            f"the target's log is longer ({start} entries) than the source's ({head.position})"
        )
    # From the target's last entry: restore checks that one is the source's too.
    position = max(0, start - 1)
    stored = 0
    while position < head.position:
        entries = await source.read(after=position, limit=batch, until=head.position)
        if not entries:
            break
        stored += await target.restore(entries)
        position = entries[-1].position
        if progress is not None:
            progress(position)
    (last,) = await source.at([head.position]) if head.position else [None]
    source_head = Head(last.position, last.hash, last.recorded) if last else Head(0)
    return Copied(stored, head.position - stored, source_head, await target.head())


class LineError(Exception):
    """A line that cannot be imported: its number and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Imported:
    """What an import did. Batches are committed one by one: on an error, the batches before
    the failing line's are stored (`committed_line` is the last line they hold), the failing
    one is not, and nothing after it is read."""

    kind: Kind | None = None
    stored: int = 0
    present: int = 0
    committed_line: int = 0
    error: LineError | None = None


def stable_id(event: NewEvent) -> str:
    """uuid5 of the canonical JSON of the event's EventIn fields as validated (defaults
    applied, `occurred` as written, `source` null when absent), without id and
    expected_version."""
    name = (
        f'{{"company":"{event.company}","confidence":"{event.confidence}",'
        f'"data":{event.data_json},"occurred":"{event.occurred.value}",'
        f'"source":{event.source_json or "null"},"type":"{event.type}"}}'
    )
    return str(uuid.uuid5(IMPORT_IDS, name))


def _from_cloudevent(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("specversion") != "1.0":
        raise ValueError('a CloudEvent of specversion "1.0" is expected')
    data = value.get("data")
    if not isinstance(data, dict):
        raise ValueError("a CloudEvent must carry the recorded event as its `data` object")
    position = data.get("position")
    if not isinstance(position, int):
        raise ValueError("the CloudEvent's data has no `position`")
    company = data.get("company")
    expected = {
        "id": data.get("id"),
        "source": f"/timeline/companies/{company}",
        "type": data.get("type"),
        "subject": company,
        "time": data.get("recorded"),
        "datacontenttype": "application/json",
        "sequence": sequence(position),
    }
    wrong = [name for name, attribute in expected.items() if value.get(name) != attribute]
    if wrong:
        listed = ", ".join(f"`{name}`" for name in wrong)
        raise ValueError(f"the CloudEvent's {listed} do not match its data")
    return data


def _entry(value: dict[str, Any]) -> LogEntry:
    """A recorded event as the API returns it → a LogEntry; `EventStore.restore` checks
    the rest."""
    missing, unknown = RECORDED_FIELDS - value.keys(), value.keys() - RECORDED_FIELDS
    if missing or unknown:
        raise ValueError(
            "a recorded event has exactly the fields of GET /v1/events: "
            + "; ".join(
                f"{label} {', '.join(sorted(names))}"
                for label, names in (("missing", missing), ("unknown", unknown))
                if names
            )
        )
    for name in ("id", "type", "company", "confidence", "recorded", "hash"):
        if not isinstance(value[name], str):
            raise ValueError(f"`{name}` must be a string")
    for name in ("position", "version"):
        if type(value[name]) is not int or value[name] < 1:
            raise ValueError(f"`{name}` must be a positive integer")
    occurred, data, source = value["occurred"], value["data"], value["source"]
    if not (
        isinstance(occurred, dict)
        and isinstance(occurred.get("lo"), str)
        and isinstance(occurred.get("hi"), str)
    ):
        raise ValueError("`occurred` must be an object with `value`, `precision`, `lo`, `hi`")
    if not isinstance(data, dict) or not (source is None or isinstance(source, dict)):
        raise ValueError("`data` must be an object, `source` an object or null")
    return LogEntry(
        id=value["id"],
        type=value["type"],
        company=value["company"],
        occurred_json=canonical(occurred),
        lo=occurred["lo"],
        hi=stored_hi(occurred["hi"]),
        data_json=canonical(data),
        source_json=None if source is None else canonical(source),
        confidence=value["confidence"],
        position=value["position"],
        version=value["version"],
        recorded=value["recorded"],
        hash=value["hash"],
    )


def _parse(raw: bytes) -> tuple[Kind, Any]:
    # Not orjson: it reads integers beyond 64 bits as floats, which would change the data.
    try:
        value = parse_json(raw)
    except ValueError as exc:
        raise ValueError(f"not a line of JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object: an EventIn, a recorded event or a CloudEvent")
    if "specversion" in value:
        return "entries", _entry(_from_cloudevent(value))
    if "hash" in value or "position" in value:
        return "entries", _entry(value)
    return "events", value


def _first_problem(error: TimelineError) -> tuple[int | None, str]:
    """The batch index and message of a validation error's first problem."""
    for problem in error.errors or []:
        loc = problem["loc"]
        if loc[:2] == ["body", "events"] and len(loc) > 2 and isinstance(loc[2], int):
            where = ".".join(str(part) for part in loc[3:])
            return loc[2], f"{where}: {problem['msg']}" if where else problem["msg"]
    return None, error.detail


class Importer:
    """Reads NDJSON lines and stores them batch by batch: EventIn lines are appended (each
    batch atomically), recorded events (an export, in either format) are restored as they
    are. One file holds one kind or the other."""

    def __init__(self, store: EventStore, *, batch: int = MAX_BATCH) -> None:
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"the batch size must be between 1 and {MAX_BATCH}")
        self.store = store
        self.batch = batch
        self.report = Imported()
        self._pending: list[tuple[int, Any]] = []
        self._first_line = 0
        self._last_position: int | None = None

    async def run(self, lines: Iterable[bytes], progress: Counted | None = None) -> Imported:
        """Import every line (blank ones skipped); `progress` gets the bytes read so far."""
        done = 0
        try:
            for number, raw in enumerate(lines, 1):
                done += len(raw)
                if raw.strip():
                    self._add(number, raw)
                if len(self._pending) == self.batch:
                    await self._commit()
                    if progress is not None:
                        progress(done)
            if self._pending:
                await self._commit()
        except LineError as error:
            self.report.error = error
        return self.report

    def _add(self, number: int, raw: bytes) -> None:
        try:
            kind, value = _parse(raw)
        except ValueError as exc:
            raise LineError(number, str(exc)) from None
        if self.report.kind is None:
            self.report.kind, self._first_line = kind, number
        elif kind != self.report.kind:
            raise LineError(
                number,
                f"{KINDS[kind]}, but line {self._first_line} is {KINDS[self.report.kind]}: "
                "a file either appends EventIn lines or restores an export, not both",
            )
        if isinstance(value, LogEntry):
            last = self._last_position
            if last is not None and value.position != last + 1:
                raise LineError(
                    number,
                    f"position {value.position} does not follow position {last} of the line "
                    "before: an export's positions are consecutive",
                )
            self._last_position = value.position
        self._pending.append((number, value))

    async def _commit(self) -> None:
        pending, self._pending = self._pending, []
        if self.report.kind == "entries":
            await self._restore(pending)
        else:
            await self._append(pending)
        self.report.committed_line = pending[-1][0]

    async def _restore(self, pending: list[tuple[int, Any]]) -> None:
        entries: list[LogEntry] = [entry for _, entry in pending]
        try:
            stored = await self.store.restore(entries)
        except TimelineError as error:
            lines = {entry.position: number for number, entry in pending}
            line = lines.get(error.extra.get("position"), pending[0][0])
            raise LineError(line, error.detail) from None
        self.report.stored += stored
        self.report.present += len(entries) - stored

    async def _append(self, pending: list[tuple[int, Any]]) -> None:
        numbers = [number for number, _ in pending]
        try:
            events = validate_body({"events": [body for _, body in pending]})
        except ValidationFailed as error:
            index, reason = _first_problem(error)
            raise LineError(numbers[index or 0], reason) from None
        unique: dict[str, NewEvent] = {}
        for event, (_, body) in zip(events, pending, strict=True):
            if "id" not in body:
                event.id, event.fresh = stable_id(event), False  # may be stored already
            # Two id-less lines with one content are one event: the later one is present.
            unique.setdefault(event.id, event)
        try:
            await self._append_new(list(unique.values()))
        except TimelineError as error:
            line = numbers[self._culprit(error, events)]
            raise LineError(line, _first_problem(error)[1]) from None
        self.report.present += len(events) - len(unique)

    async def _append_new(self, events: list[NewEvent]) -> None:
        try:
            appended = await self.store.append(events)
        except IdConflict as conflict:
            if "ids" not in conflict.extra:
                raise
            # Some are stored already (a resumed import): replaying those checks their
            # content and stores nothing, then the rest are appended atomically.
            stored = set(conflict.extra["ids"])
            await self.store.append([event for event in events if event.id in stored])
            fresh = await self.store.append([event for event in events if event.id not in stored])
            self.report.present += len(stored)
            self.report.stored += len(fresh.events)
            return
        if appended.created:
            self.report.stored += len(appended.events)
        else:
            self.report.present += len(appended.events)

    @staticmethod
    def _culprit(error: TimelineError, events: list[NewEvent]) -> int:
        """The batch index of the event a store error is about (the first, if unknown)."""
        index, _ = _first_problem(error)
        if index is not None:
            return index
        for i, event in enumerate(events):
            if event.id == error.extra.get("id"):
                return i
        return 0
