"""The benchmark's log: fuzzy-dated events of every precision, as `timeline import` reads them.

`write_log` writes N EventIn lines (ids included) to an NDJSON file: `mid` gets 300 events
and `giant` GIANT of them, the rest is spread over `companies` companies; dates are drawn
over 2019-2025 at every precision, `~` and `?` included; 1% of the events are amendments
(corrections, retractions, reinstatements) of an earlier event of the same company.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

TYPES = ["model.launched", "team.formed", "ceo.letter", "statement.made", "product.integrated"]
AMENDMENTS = ["event.corrected", "event.retracted", "event.reinstated"]
PAYLOAD: dict[str, dict[str, Any]] = {
    "model.launched": {"model": "Model {n}", "stage": "public", "modality": ["text"]},
    "team.formed": {"name": "Team {n}", "location": "Shanghai", "headcount": 40},
    "ceo.letter": {"author": "CEO {n}", "role": "CEO", "summary": "Letter {n} to all staff."},
    "statement.made": {"speaker": "Chair {n}", "summary": "Statement {n}."},
    "product.integrated": {"product": "App {n}", "model": "Model {n}"},
}
FIRST_DAY, LAST_DAY = date(2019, 1, 1), date(2025, 12, 31)
DAYS = (LAST_DAY - FIRST_DAY).days
MID, MID_FACTS = "mid", 300


def fuzzy(rng: random.Random) -> str:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    text = rng.choice(
        [
            day.isoformat(),
            day.isoformat(),
            f"{day.year}-{day.month:02d}",
            f"{day.year}-Q{(day.month - 1) // 3 + 1}",
            f"{day.year}",
        ]
    )
    return text + rng.choice(["", "", "", "", "~", "?"])


def payload(kind: str, n: int) -> dict[str, Any]:
    return {
        key: value.format(n=n) if isinstance(value, str) else value
        for key, value in PAYLOAD[kind].items()
    }


def event(rng: random.Random, company: str, n: int, earlier: list[str]) -> dict[str, Any]:
    """One EventIn body: a new fact, or (1%) an amendment of one of `earlier`."""
    if earlier and rng.random() < 0.01:
        kind = rng.choice(AMENDMENTS)
        target = rng.choice(earlier)
        data: dict[str, Any] = {"target": target, "reason": "bench"}
        if kind == "event.corrected":
            data = {"target": target, "occurred": fuzzy(rng)}
        body = {"type": kind, "company": company, "occurred": fuzzy(rng), "data": data}
    else:
        kind = rng.choice(TYPES)
        body = {"type": kind, "company": company, "occurred": fuzzy(rng)}
        body["data"] = payload(kind, n)
        body["confidence"] = rng.choice(["confirmed", "reported", "rumored"])
    body["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind not in AMENDMENTS:
        earlier.append(body["id"])
    return body


@dataclass(frozen=True)
class Log:
    path: Path
    events: int
    giant: int  # events of `giant`


def write_log(path: Path, size: int, giant: int, companies: int) -> Log:
    rng = random.Random(size)
    owners = [MID] * MID_FACTS + ["giant"] * giant
    owners += [f"c{i % companies:05d}" for i in range(size - len(owners))]
    rng.shuffle(owners)
    earlier: dict[str, list[str]] = {}
    with path.open("w", encoding="utf-8") as out:
        for n, company in enumerate(owners):
            body = event(rng, company, n, earlier.setdefault(company, []))
            out.write(json.dumps(body, ensure_ascii=False) + "\n")
    return Log(path, size, giant)
