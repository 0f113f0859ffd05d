"""The seed timeline is the article seeds/seed-article.txt: every line a valid EventIn with a
stable id, quoting a sentence (or clause) of the article verbatim, and dated no more precisely
than the article allows."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from events.dates import FuzzyDate, Precision
from events.store import EventStore
from events.types import AMENDMENTS
from events.validation import validate_body
from tests.api import Api
from timeline.commands.serving import load_seeds

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
LINES = (SEEDS / "big-models-2023.ndjson").read_text(encoding="utf-8").splitlines()
BODIES: list[dict[str, Any]] = [json.loads(line) for line in LINES if line.strip()]


def normal(text: str) -> str:
    """Every run of whitespace (line breaks included) as one space: how quotes are matched."""
    return " ".join(text.split())


ARTICLE = normal((SEEDS / "seed-article.txt").read_text(encoding="utf-8"))
PUBLISHER = "Tech Planet"  # the article's first words; it gives no title, URL or date

# The article gives no date of its own. Its "this year" is 2023 ("In April this year, ... at the
# 2023 Alibaba Cloud Summit"), and it reports 2023's third-quarter results as released: it was
# written in 2023's fourth quarter, and nothing it reports happened later.
YEAR = 2023
WRITTEN = FuzzyDate.parse("2023-Q4")
WRITTEN_BECAUSE = (
    "In April this year, Zhang Yong, then chairman of the board and CEO of Alibaba Group, said at "
    "the 2023 Alibaba Cloud Summit",
    "Just as Kuaishou recently released its 2023 third quarter financial report",
)

# What a date named in a quote says of the event's `occurred` (its range [lo, hi)):
#   in      the event happened within the date named;
#   by      it had happened by then: on or before (a company existing, an office held, "as of");
#   after   it happened after the date's start, by the article's: "then chairman" in April;
#   period  a financial report: its `period` lies within the date, and it came out after that
#           period ended, by the article's date.
# A quote that names no date ("undated") leaves `occurred` a range, [..F] or [F1..F2], or the
# article's own date (2023-Q4); why is said in the event's `note` or in UNDATED below.
RELATION_BY_TYPE = {
    "company.registered": "by",
    "executive.appointed": "by",
    "executive.departed": "after",
    "financial.report": "period",
}

# Quotes whose date is not the event's, by the quote's first words: (relation, why).
EXCEPTIONS = {
    "At the beginning of this year, there was a big model craze": (
        "by",
        "the year's beginning dates the craze, not each launch: each model was out by the "
        "article's date, some day in 2023 or before",
    ),
    "According to Goldman Sachs' forecast, AI will save": (
        "undated",
        "2025 is the forecast's horizon; when it was made the article does not say",
    ),
}

# Why an undated quote's event has the range it has, by the quote's first words.
BY_THEN = "on or before the article's date"
PAST_YEAR = (
    "an example of what e-commerce platforms did 'In the past year' (the sentence before): "
    "within the year before the article's date, [2022-10..2023-12]"
)
UNDATED = {
    "PinduoduoA group of dozens of people": f"'has been established': {BY_THEN}",
    "Tech Planet found that Pinduoduo has started recruiting": f"'has started': {BY_THEN}",
    "Huang Zheng once revealed": f"'once revealed', an undated interview: {BY_THEN}",
    "Pinduoduo used a technology internally called": f"undated: {BY_THEN}",
    "Sources revealed to Tech Planet": f"'revealed': {BY_THEN}",
    "For example, Baidu e-commerce has launched": PAST_YEAR,
    "Douyin's Yuntu Express version": PAST_YEAR,
    "Taobao has already internally tested": PAST_YEAR,
    "The person in charge of Taobao's Tmall merchant platform": (
        "speaks of the opening 'in May this year' (the next sentence) as past: between May 2023 "
        "and the article's date"
    ),
    "According to Goldman Sachs' forecast": f"undated: {BY_THEN}",
    "Tmall, DingTalk, AutoNavi Maps": f"'have been connected': {BY_THEN}",
    "Alibaba Intelligent Information Group recently released": f"'recently': {BY_THEN}",
    "Ant Group's technical R&D team has developed": f"'has developed': {BY_THEN}",
    "Tencent's self-developed Hunyuan big model": f"'has been connected': {BY_THEN}",
    "Ma Huateng, Chairman and CEO of Tencent, said": f"an undated remark: {BY_THEN}",
    "From the main business search to Baidu Wenku": f"'have all been connected': {BY_THEN}",
    "ByteDance's Skylark big model has been integrated": f"'has been integrated': {BY_THEN}",
    "ByteDance directly integrated the big model": f"undated: {BY_THEN}",
    "After Kuaishou released the Kuaiyi big model": f"undated: {BY_THEN}",
    "Recently, Meituan's big model has also passed": f"'Recently': {BY_THEN}",
    "Didi was exposed to be forming": f"'was exposed': {BY_THEN}",
}

# Who held office at the article's date, read from the article (not from the seed).
OFFICE_HOLDERS = {
    "pinduoduo": {("Chen Lei", "chairman"), ("Chen Lei", "CEO")},  # "chairman and CEO Chen Lei"
    # Zhang Yong was "then chairman of the board and CEO" in April; by September 12 Wu Yongming
    # was "the new CEO".
    "alibaba": {("Wu Yongming", "CEO")},
    "tencent": {("Ma Huateng", "chairman"), ("Ma Huateng", "CEO")},  # "Chairman and CEO"
    "baidu": {("Robin Li", "CEO")},  # "Baidu CEO Robin Li", in May; no departure reported
}

# Dates as quotes name them. A date without its year is of the article's ("On September 12");
# so is "this year".
MONTH = "January|February|March|April|May|June|July|August|September|October|November|December"
MONTHS = {name: number for number, name in enumerate(MONTH.split("|"), start=1)}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
DATES = re.compile(
    rf"\b(?P<d_month>{MONTH}) (?P<d_day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,? (?P<d_year>\d{{4}}))?"
    rf"|\b(?P<m_month>{MONTH})\b(?:,? (?P<m_year>\d{{4}})\b)?"
    r"|(?:\b(?P<q_year>\d{4}) )?\b(?P<q_ord>(?i:first|second|third|fourth)) quarter"
    r"(?: of (?P<q_year2>\d{4}))?"
    r"|(?:\b(?P<qn_year>\d{4})[ -])?\bQ(?P<qn>[1-4])\b(?: (?P<qn_year2>\d{4})\b)?"
    r"|(?:\b(?P<h_year>\d{4}) )?\b(?P<h_ord>(?i:first|second)) half(?: of (?P<h_year2>\d{4}))?"
    r"|(?:(?P<c_year>\d{4})年)?(?P<c_month>\d{1,2})月(?:(?P<c_day>\d{1,2})[日号])?"
    r"|(?P<c_year_only>\d{4})年"
    r"|(?P<this_year>\b(?i:this year)\b)"
    r"|\b(?P<year>(?:19|20)\d{2})\b"
)


@dataclass(frozen=True)
class Named:
    """A date a quote names, and whether it reads "as of" it (a state found then)."""

    text: str
    date: FuzzyDate
    as_of: bool


def _year(*found: str | None) -> int:
    return next((int(text) for text in found if text), YEAR)


def named_dates(quote: str) -> list[Named]:
    """Every date the quote names, as a fuzzy date."""
    named = []
    for match in DATES.finditer(quote):
        g = match.groupdict()
        if g["d_month"]:
            value = f"{_year(g['d_year'])}-{MONTHS[g['d_month']]:02d}-{int(g['d_day']):02d}"
        elif g["m_month"]:
            value = f"{_year(g['m_year'])}-{MONTHS[g['m_month']]:02d}"
        elif g["q_ord"]:
            value = f"{_year(g['q_year'], g['q_year2'])}-Q{ORDINALS[g['q_ord'].lower()]}"
        elif g["qn"]:
            value = f"{_year(g['qn_year'], g['qn_year2'])}-Q{g['qn']}"
        elif g["h_ord"]:
            year, first = _year(g["h_year"], g["h_year2"]), g["h_ord"].lower() == "first"
            value = f"[{year}-01..{year}-06]" if first else f"[{year}-07..{year}-12]"
        elif g["c_month"]:
            value = f"{_year(g['c_year'])}-{int(g['c_month']):02d}"
            value += f"-{int(g['c_day']):02d}" if g["c_day"] else ""
        else:
            value = str(_year(g["c_year_only"], g["year"]))
        as_of = quote[: match.start()].rstrip().lower().endswith("as of")
        named.append(Named(match.group(0), FuzzyDate.parse(value), as_of))
    return named


def _prefix(table: dict[str, Any], quote: str) -> str | None:
    return next((key for key in table if quote.startswith(key)), None)


def relation(body: dict[str, Any]) -> str:
    quote = body["source"]["quote"]
    excepted = _prefix(EXCEPTIONS, quote)
    if excepted is not None:
        return str(EXCEPTIONS[excepted][0])
    named = named_dates(quote)
    if not named:
        return "undated"
    if any(n.as_of for n in named):
        return "by"
    return RELATION_BY_TYPE.get(body["type"], "in")


def date_problem(body: dict[str, Any]) -> str | None:
    """Why the event's `occurred` says more (or other) than its quote, or None."""
    occurred = FuzzyDate.parse(body["occurred"])
    quote = body["source"]["quote"]
    ranged = occurred.precision in (Precision.ON_OR_BEFORE, Precision.BETWEEN)
    written = body["occurred"] == WRITTEN.value
    if occurred.hi > WRITTEN.hi:
        return f"{body['occurred']} may fall after the article was written ({WRITTEN.value})"
    kind = relation(body)
    if kind == "undated":
        if not (ranged or written):
            return f"the quote names no date, so {body['occurred']} must be a range or 2023-Q4"
        if not (body["data"].get("note") or _prefix(UNDATED, quote)):
            return "the quote names no date: say why this range in `note` or in UNDATED"
        return None
    named = [n.date for n in named_dates(quote)]
    lo, hi = max(d.lo for d in named), min(d.hi for d in named)
    said = ", ".join(n.text for n in named_dates(quote))
    if hi <= lo:
        return f"the quote names dates that do not meet ({said}): list it in EXCEPTIONS"
    if kind == "in" and not (lo <= occurred.lo and occurred.hi <= hi):
        return f"{body['occurred']} is not within what the quote says ({said})"
    if kind == "by" and not (ranged and occurred.hi <= hi):
        return f"{body['occurred']} must be a range ending by what the quote says ({said})"
    if kind == "after" and not (ranged and lo <= occurred.lo):
        return f"{body['occurred']} must be a range from what the quote says ({said}) on"
    if kind == "period":
        period = FuzzyDate.parse(body["data"]["period"])
        if not (lo <= period.lo and period.hi <= hi):
            return f"period {period.value} is not within what the quote says ({said})"
        if not (period.hi <= occurred.lo and (ranged or written)):
            return f"{body['occurred']} must be a range after the period {period.value} ends"
    return None


@pytest.mark.parametrize(
    ("quote", "dates"),
    [
        ("On September 12, Wu Yongming", ["2023-09-12"]),
        ("In June 2018, Chen Lei", ["2018-06"]),
        ("in September. In May this year", ["2023-09", "2023-05", "2023"]),
        ("its 2023 third quarter financial report", ["2023-Q3"]),
        ("revenue in the third quarter of 2022", ["2022-Q3"]),
        ("in Q1 and 2024 Q2", ["2023-Q1", "2024-Q2"]),
        ("in the first half of 2023", ["[2023-01..2023-06]"]),
        ("2023年9月12日发布, 10月", ["2023-09-12", "2023-10"]),
        ("As of September 2018, more than 1,700 engineers", ["2018-09"]),
        ("Many positions may offer millions; 25.7 billion yuan, up 20%", []),
    ],
)
def test_the_date_parser_reads_what_quotes_say(quote: str, dates: list[str]) -> None:
    assert [n.date.value for n in named_dates(quote)] == dates


@pytest.mark.parametrize(
    ("occurred", "quote", "data", "wrong"),
    [
        ("2023-05", "In April this year, Zhang Yong said", {}, True),
        ("2023-04-20", "In April this year, Zhang Yong said", {}, False),
        ("2023-11~", "Recently, Meituan's big model has also passed the filing", {}, True),
        ("[..2023-12]", "Recently, Meituan's big model has also passed the filing", {}, False),
        ("[..2023-12]", "Recently, nobody explained this range", {}, True),
        ("2024", "Recently, Meituan's big model has also passed the filing", {}, True),
        ("2018-09", "As of September 2018, the team had 1,700 engineers", {}, True),
        ("[..2018-09]", "As of September 2018, the team had 1,700 engineers", {}, False),
    ],
)
def test_a_date_must_say_no_more_than_its_quote(
    occurred: str, quote: str, data: dict[str, Any], wrong: bool
) -> None:
    body = {"type": "team.formed", "occurred": occurred, "data": data, "source": {"quote": quote}}
    assert (date_problem(body) is not None) is wrong


def test_every_line_validates_with_a_stable_id_and_a_verbatim_quote() -> None:
    assert all(line.strip() for line in LINES), "no blank lines"
    assert len(BODIES) >= 50
    assert ARTICLE.startswith(PUBLISHER)
    ids = set()
    companies = set()
    for number, body in enumerate(BODIES, start=1):
        (event,) = validate_body(body)
        assert body.get("id") == event.id, f"line {number} needs a stable id"
        assert str(uuid.UUID(body["id"])) == body["id"], f"line {number}: a UUID, as stored"
        ids.add(event.id)
        companies.add(event.company)
        assert event.type not in AMENDMENTS
        source = body.get("source") or {}
        assert set(source) == {"publisher", "quote"}, f"line {number}: what the article gives"
        assert source["publisher"] == PUBLISHER
        quote = source["quote"]
        assert quote == normal(quote), f"line {number}: a quote in normal form"
        assert quote in ARTICLE, f"line {number}: quote not found in the article"
    assert len(ids) == len(BODIES)
    named = {"pinduoduo", "alibaba", "ant-group", "baidu", "tencent", "huawei", "kuaishou"}
    assert named | {"meituan", "didi", "bytedance"} <= companies
    registered = {body["company"] for body in BODIES if body["type"] == "company.registered"}
    assert registered == companies


def test_every_date_says_no_more_than_its_quote() -> None:
    for reason in WRITTEN_BECAUSE:
        assert reason in ARTICLE
    problems = [
        f"{body['id']} ({body['type']}, {body['company']}): {problem}"
        for body in BODIES
        if (problem := date_problem(body)) is not None
    ]
    assert problems == []
    for body in BODIES:
        key = _prefix(UNDATED, body["source"]["quote"])
        if key is not None and UNDATED[key] == PAST_YEAR:
            assert body["occurred"] == "[2022-10..2023-12]", body["id"]
    quotes = [body["source"]["quote"] for body in BODIES]
    for table in (EXCEPTIONS, UNDATED):
        unused = [key for key in table if not any(quote.startswith(key) for quote in quotes)]
        assert unused == []


def test_every_dated_sentence_of_the_article_is_an_event() -> None:
    quotes = [body["source"]["quote"] for body in BODIES]
    sentences = re.split(r'(?<=[.!?])\s+|(?<=[.!?]")\s+', ARTICLE)
    dated = [sentence for sentence in sentences if named_dates(sentence)]
    assert len(dated) >= 10
    missed = [s for s in dated if not any(q in s or s in q for q in quotes)]
    assert missed == []


def test_the_readme_counts_the_seed() -> None:
    readme = normal((ROOT / "README.md").read_text(encoding="utf-8"))
    assert f"{len(BODIES)} events" in readme


async def test_start_up_loads_the_seed_into_a_store(store: EventStore) -> None:
    assert await load_seeds(store) == len(BODIES)
    entries = await store.read(limit=len(BODIES) + 1)
    assert [entry.id for entry in entries] == [body["id"] for body in BODIES]
    assert (await store.head()).position == len(BODIES)
    assert await store.verify() is None
    earlier: dict[str, str] = {}
    for entry in entries:
        if entry.type in AMENDMENTS:  # an amendment of the seed amends the seed
            target = json.loads(entry.data_json)["target"]
            assert earlier.get(target) == entry.company, f"{entry.id} targets {target}"
        earlier[entry.id] = entry.company


async def state(api: Api, company: str, as_of: str) -> Any:
    response = await api.client.get(f"/v1/companies/{company}?as_of={as_of}")
    assert response.status == 200, await response.text()
    return await response.json()


def holders(company_state: Any) -> set[tuple[str, str]]:
    return {(item["person"], item["role"]) for item in company_state["executives"]}


async def test_the_seeds_load_once_and_answer_the_article(api: Api) -> None:
    body = {"events": BODIES}
    first = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert first.status == 201
    again = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert again.status == 200  # loading twice is a no-op
    tencent = await state(api, "tencent", "2023-12-31")
    (report,) = tencent["financials"]
    assert report["period"] == "2023-Q3"
    assert report["metrics"][0] == {
        "name": "advertising revenue",
        "value": 25.7,
        "unit": "billion yuan",
        "yoy_pct": 20,
    }
    alibaba = await state(api, "alibaba", "2023-09-12")
    assert alibaba["name"] == "Alibaba Group"
    assert [letter["author"] for letter in alibaba["letters"]] == ["Wu Yongming"]
    for company in {body["company"] for body in BODIES}:
        end = await state(api, company, "2023-12-31")
        assert end["name"] != company, f"{company} is registered by the article's date"


async def test_the_executives_are_those_the_article_names(api: Api) -> None:
    await api.append({"events": BODIES})
    executives = {"executive.appointed", "executive.departed"}
    led = {body["company"] for body in BODIES if body["type"] in executives}
    assert led == set(OFFICE_HOLDERS)
    for company, expected in OFFICE_HOLDERS.items():
        end = await state(api, company, "2023-12-31")
        assert holders(end) == expected, company
        assert all("departure" not in item for item in end["executives"])
    # In April Zhang Yong was "then chairman of the board and CEO": in office, on his way out.
    april = await state(api, "alibaba", "2023-04-30")
    assert holders(april) == {("Zhang Yong", "chairman"), ("Zhang Yong", "CEO")}
    assert all("departure" in item for item in april["executives"])
    # On September 12 Wu Yongming was "the new CEO"; who chaired the board then it leaves open.
    letter_day = await state(api, "alibaba", "2023-09-12")
    assert holders(letter_day) == {("Wu Yongming", "CEO"), ("Zhang Yong", "chairman")}
    (chair,) = [item for item in letter_day["executives"] if item["role"] == "chairman"]
    assert "departure" in chair
