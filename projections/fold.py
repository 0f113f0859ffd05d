"""The fold: a company's effective events → its state as of a date. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

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
STATE_LISTS = ("models", "teams", "filings", "letters", "statements", "integrations", "financials")


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
        return str(self.occurred["hi"])

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
    has begun; None when it lies wholly after. ISO dates compare as strings."""
    if as_of == date.max or hi <= (as_of + timedelta(days=1)).isoformat():
        return "definite"  # (every range ends by the end of the calendar)
    if lo <= as_of.isoformat():
        return "possible"
    return None


def fold(
    company: str, facts: Iterable[Fact], as_of: date, *, include_possible: bool = False
) -> dict[str, Any]:
    """Company state from its effective, non-retracted facts, given in valid-time order."""
    state: dict[str, Any] = {"company": company, "name": company, "aliases": []}
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name in STATE_LISTS}
    possible: list[dict[str, Any]] = []
    for fact in facts:
        found = range_status(fact.lo, fact.hi, as_of)
        if found is None:
            continue
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
    state.update(lists)
    state["possible"] = possible
    return state
