"""The seed timeline: every line a valid EventIn, every quote verbatim from the article."""

from __future__ import annotations

import json
from pathlib import Path

from events.types import AMENDMENTS
from events.validation import validate_body
from tests.api import Api

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def test_every_line_validates_and_every_quote_is_verbatim() -> None:
    article = (SEEDS / "seed-article.txt").read_text(encoding="utf-8")
    lines = (SEEDS / "big-models-2023.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 50
    ids = set()
    companies = set()
    for number, line in enumerate(lines, start=1):
        body = json.loads(line)
        (event,) = validate_body(body)
        assert body.get("id") == event.id, f"line {number} needs a stable id"
        ids.add(event.id)
        companies.add(event.company)
        assert event.type not in AMENDMENTS
        quote = (body.get("source") or {}).get("quote")
        if event.type != "company.registered":
            assert quote, f"line {number} has no source quote"
        if quote:
            assert quote in article, f"line {number}: quote not found in the article"
    assert len(ids) == len(lines)
    named = {"pinduoduo", "alibaba", "ant-group", "baidu", "tencent", "huawei", "kuaishou"}
    assert named | {"meituan", "didi", "bytedance"} <= companies


async def test_the_seeds_load_once_and_answer_the_article(api: Api) -> None:
    lines = (SEEDS / "big-models-2023.ndjson").read_text(encoding="utf-8").splitlines()
    body = {"events": [json.loads(line) for line in lines]}
    first = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert first.status == 201
    again = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert again.status == 200  # loading twice is a no-op
    tencent = await (await api.client.get("/v1/companies/tencent?as_of=2023-12-31")).json()
    (report,) = tencent["financials"]
    assert report["period"] == "2023-Q3"
    assert report["metrics"][0] == {
        "name": "advertising revenue",
        "value": 25.7,
        "unit": "billion yuan",
        "yoy_pct": 20,
    }
    alibaba = await (await api.client.get("/v1/companies/alibaba?as_of=2023-09-12")).json()
    assert alibaba["name"] == "Alibaba Group"
    assert [letter["author"] for letter in alibaba["letters"]] == ["Wu Yongming"]
