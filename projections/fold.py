"""The fold: a company's effective events → its state as of a date. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Literal, TypeVar

from events.dates import after, stored_hi

Status = Literal["definite", "possible"]

LISTS = {
    "model.launched": "models",
    "team.formed": "teams",
    "filing.passed": "filings",
    "ceo.letter": "letters",
    "statement.made": "statements",
    "product.integrated": "integrations",
    "financial.report": "financials",
}
STATE_LISTS = (
    "models",
    "teams",
    "filings",
    "letters",
    "statements",
    "integrations",
    "financials",
    "executives",
)
APPOINTED, DEPARTED = "executive.appointed", "executive.departed"
Item = TypeVar("Item")
Marker = TypeVar("Marker")


@dataclass(slots=True)
class Fact:
    """An event as in effect at some point of the log: after the corrections known then.
    `position` is the original event's, which orders facts that share a range."""

    id: str
    type: str
    company: str
    occurred: dict[str, Any]
    data: dict[str, Any]
    confidence: str
    position: int

    @property
    def lo(self) -> str:
        return str(self.occurred["lo"])

    @property
    def hi(self) -> str:
        return stored_hi(str(self.occurred["hi"]))

    def order(self) -> tuple[str, str, int]:
        """Valid-time order: (lo, hi, position)."""
        return (self.lo, self.hi, self.position)

    def item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "occurred": self.occurred,
            "confidence": self.confidence,
            **self.data,
        }


def range_status(lo: str, hi: str, as_of: date) -> Status | None:
    """Definite when the whole range [lo, hi) is over by the end of `as_of`; possible when it
    has begun; None when it lies wholly after. Stored bounds compare as strings."""
    if hi <= after(as_of):
        return "definite"
    if lo <= as_of.isoformat():
        return "possible"
    return None


@dataclass
class Tenures(Generic[Item, Marker]):
    """The `executives` of a company's state as of D, from its appointments and departures
    given in valid-time order: a departure of the same person and role ends the appointments
    before it when it is definite, and, when it is only possible, marks those it does not end
    with a `departure` (the first such departure's)."""

    held: list[tuple[Item, Marker | None] | None] = field(default_factory=list)
    open: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def appoint(self, person: str, role: str, item: Item) -> None:
        self.open.setdefault((person, role), []).append(len(self.held))
        self.held.append((item, None))

    def depart(self, person: str, role: str, definite: bool, marker: Marker) -> None:
        for index in self.open.get((person, role), []):
            held = self.held[index]
            if held is None:
                continue
            if definite:
                self.held[index] = None
            elif held[1] is None:
                self.held[index] = (held[0], marker)
        if definite:
            self.open.pop((person, role), None)

    def items(self) -> list[tuple[Item, Marker | None]]:
        """The appointments in force, in order, each with its possible departure or None."""
        return [held for held in self.held if held is not None]


def fold(
    company: str, facts: Iterable[Fact], as_of: date, *, include_possible: bool = False
) -> dict[str, Any]:
    """Company state from its effective, non-retracted facts, given in valid-time order."""
    state: dict[str, Any] = {"company": company, "name": company, "aliases": []}
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name in STATE_LISTS}
    possible: list[dict[str, Any]] = []
    tenures = Tenures[dict[str, Any], dict[str, Any]]()
    for fact in facts:
        found = range_status(fact.lo, fact.hi, as_of)
        if found is None:
            continue
        if fact.type == DEPARTED:
            marker = {"id": fact.id, "occurred": fact.occurred, "confidence": fact.confidence}
            tenures.depart(fact.data["person"], fact.data["role"], found == "definite", marker)
        if found == "possible":
            possible.append({"id": fact.id, "type": fact.type, **fact.item()})
            if not include_possible:
                continue
        if fact.type == "company.registered":
            if found == "definite":
                state["name"] = fact.data["name"]
                state["aliases"] = list(fact.data.get("aliases", []))
        elif fact.type in LISTS:
            lists[LISTS[fact.type]].append(fact.item())
        elif fact.type == APPOINTED:
            tenures.appoint(fact.data["person"], fact.data["role"], fact.item())
    lists["executives"] = [
        item if departure is None else {**item, "departure": departure}
        for item, departure in tenures.items()
    ]
    state.update(lists)
    state["possible"] = possible
    return state
