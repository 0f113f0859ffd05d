"""The dashboard at `/`: its files and headers through the test client, and the page itself in
a real browser (Debian's Chromium, driven by Playwright) against a real `timeline serve`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    Route,
    async_playwright,
    expect,
)

from events.dates import ordinal, stored_hi
from tests.api import AiohttpClient, Api, make_api, problem
from tests.databases import Database
from tests.factories import event_in
from timeline.dashboard import ASSETS, STATIC

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [
    json.loads(line)
    for line in (ROOT / "seeds" / "big-models-2023.ndjson").read_text().splitlines()
    if line.strip()
]
LETTER = next(e for e in SEEDS if e["type"] == "ceo.letter" and e["company"] == "alibaba")
TONGYI = next(e for e in SEEDS if e["data"].get("model") == "Tongyi Qianwen")
# Pinduoduo's large-model team: its range begins before mid-November 2023 and ends with 2023.
PINDUODUO_TEAM = next(
    e
    for e in SEEDS
    if e["type"] == "team.formed"
    and e["company"] == "pinduoduo"
    and e["data"]["name"] == "large model team"
)
ADMIN = "tl_dashboard-admin"
CHROMIUM = os.environ.get("TIMELINE_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).is_file()
# The machine has no network: without these, Chromium waits on connections that never come.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATE_SECTIONS = [
    "models",
    "teams",
    "filings",
    "letters",
    "statements",
    "integrations",
    "financials",
    "executives",
]


PRECISION = {"decade": "decade", "between": "some day between"}
DASH = "\N{EN DASH}"  # between a range's ends, as the page writes it


def shown_date(occurred: dict[str, str]) -> str:
    """A date as a card shows it: as written, an approximate one with its tilde in front."""
    value = occurred["value"]
    return f"~{value[:-1]}" if value.endswith("~") else value


def described_date(occurred: dict[str, str]) -> str:
    """A date's range as its tooltip says it, from the server's lo and hi."""
    last = date.fromordinal(ordinal(stored_hi(occurred["hi"])) - 1).isoformat()
    if occurred["lo"] == "0001-01-01":
        return f"on or before {last}"
    span = occurred["lo"] if occurred["lo"] == last else f"{occurred['lo']} to {last}"
    value = occurred["value"]
    mark = ", approximate" if value.endswith("~") else ", uncertain" if value.endswith("?") else ""
    return f"{span} ({PRECISION.get(occurred['precision'], occurred['precision'])}{mark})"


def artifacts(tmp_path: Path) -> Path:
    """Where the screenshots go: $TIMELINE_TEST_ARTIFACTS, else the test's own tmp_path."""
    folder = Path(os.environ.get("TIMELINE_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(target: Page | Locator, folder: Path, name: str) -> Path:
    """A screenshot of what a person sees (the page, or one part of it), kept for a look; it
    must exist and not be empty."""
    path = folder / name
    await target.screenshot(path=path)
    assert path.is_file() and path.stat().st_size > 0, path
    return path


# ---- the page and its files, through the test client --------------------------------------


async def test_the_page_is_served_with_its_headers_and_files(api: Api) -> None:
    response = await api.client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    linked = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(set(linked)) == ["/static/favicon.svg", "/static/main.js", "/static/style.css"]
    # One script, the entry module; it imports the others (see the test of the imports below).
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="/static/main.js">']
    for path, content_type in [
        ("/static/main.js", "text/javascript"),
        ("/static/style.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        asset = await api.client.get(path)
        assert asset.status == 200, path
        assert asset.content_type == content_type
        assert asset.headers["Cache-Control"] == "no-cache"
        again = await api.client.get(path, headers={"If-None-Match": asset.headers["ETag"]})
        assert again.status == 304
    for missing in [
        "/static/nope.js",
        "/static/app.js",  # the one script before the modules
        "/static/..%2Fdashboard.py",
        "/static/index.htm",
    ]:
        await problem(await api.client.get(missing), 404, "not-found")
    await problem(await api.client.post("/"), 405, "bad-request")


MODULES = sorted(path.name for path in STATIC.glob("*.js"))
# `import { a, b } from "./x.js";` (over several lines, when long): the only imports the page has.
IMPORT = re.compile(r'^import\s*\{[^}]*\}\s*from\s*"([^"]*)";', re.MULTILINE)


def imports(module: str) -> list[str]:
    """The modules a module imports, each checked to be a sibling file: `./name.js`."""
    text = (STATIC / module).read_text()
    found = IMPORT.findall(text)
    # Every import statement is one the pattern read: no bare, default, namespace or dynamic
    # import, and no re-export, slips past the checks below.
    assert len(re.findall(r"^import\b", text, re.MULTILINE)) == len(found), module
    assert not re.search(r"\bimport\s*\(|^export\s*(?:\*|\{[^}]*\})\s*from\b", text, re.M), module
    for target in found:
        assert re.fullmatch(r"\./[a-z]+\.js", target), (module, target)
    return [target.removeprefix("./") for target in found]


def test_the_page_writes_no_markup_and_loads_nothing_from_elsewhere() -> None:
    assert "main.js" in MODULES and "app.js" not in MODULES
    for module in MODULES:
        script = (STATIC / module).read_text()
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]:
            assert sink not in script, (module, sink)
        # The modules share what they share through imports, not through the window; the one
        # name the page puts there is its timings, for a look from outside.
        shared = set(re.findall(r"\b(?:window|globalThis|self)\.(\w+)", script))
        assert shared <= {"timelineTimings"}, module
    for name in ["index.html", "style.css", *MODULES]:
        text = (STATIC / name).read_text()
        elsewhere = set(re.findall(r"https?://[^\s\"')]+", text)) - {"http://www.w3.org/2000/svg"}
        assert elsewhere == set(), name


async def test_every_module_import_names_a_module_that_is_served(api: Api) -> None:
    """A module script needs each file it imports served, with a JavaScript MIME type (the
    browser refuses a module sent as anything else); every file in static/ is reached from the
    entry, main.js, and none imports in a circle."""
    reached: set[str] = set()
    todo = ["main.js"]
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        for target in imports(module):
            assert target in ASSETS, (module, target)
            todo.append(target)
    assert sorted(reached) == MODULES
    waiting = {module: set(imports(module)) for module in MODULES}
    while waiting:
        ready = {module for module, targets in waiting.items() if not targets & waiting.keys()}
        assert ready, f"an import circle, in or under: {sorted(waiting)}"
        waiting = {module: targets for module, targets in waiting.items() if module not in ready}
    for module in MODULES:
        response = await api.client.get(f"/static/{module}")
        assert response.status == 200, module
        assert response.content_type == "text/javascript", module
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.text() == (STATIC / module).read_text()


async def test_access_token_authenticates_reads_only(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path, read_auth=True)
    read = api.tokens["read"]
    assert (await api.client.get("/")).status == 200  # the page must load to ask for a token
    await problem(await api.client.get("/v1/events"), 401, "unauthorized")
    assert (await api.client.get(f"/v1/events?access_token={read}")).status == 200
    await problem(await api.client.get("/v1/events?access_token=tl_nope"), 401, "unauthorized")
    # The header wins over the parameter.
    bad_header = {"Authorization": "Bearer tl_nope"}
    response = await api.client.get(f"/v1/events?access_token={read}", headers=bad_header)
    await problem(response, 401, "unauthorized")
    # Writes need the header.
    response = await api.client.post(
        f"/v1/events?access_token={api.tokens['append']}", json=event_in()
    )
    await problem(response, 401, "unauthorized")
    async with api.client.get(f"/v1/stream?after=0&access_token={read}") as stream:
        assert stream.status == 200
        assert await stream.content.readline() == b"retry: 3000\n"


# ---- the page in a browser, against `timeline serve` ---------------------------------------


class Server:
    """`timeline serve` as a child process, on a port that a restart keeps."""

    def __init__(self, db: Path | str, **env: str) -> None:
        self.db = db if isinstance(db, str) else f"sqlite:///{db}"
        self.env, self.port = env, 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "timeline.cli", "serve", "--db", self.db],
            *["--port", str(self.port)],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "TIMELINE_BOOTSTRAP_TOKEN": ADMIN, **self.env},
        )
        assert self.process.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode()
            assert line, "the server exited before it was ready"
            if found := re.search(r"Dashboard: http://127\.0\.0\.1:(\d+)/", line):
                self.port = int(found.group(1))
                return

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(self.process.wait(), 20) == 0

    async def get(self, path: str, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + path, headers=headers) as response,
        ):
            assert response.status == 200, await response.text()
            return await response.json()

    async def append(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "v1/events", json=body, headers=headers) as response,
        ):
            assert response.status == 201, await response.text()
            (stored,) = (await response.json())["events"]
            return dict(stored)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium, or set TIMELINE_CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


def console_problem(message: ConsoleMessage) -> str | None:
    """A policy violation, or an error the page did not ask for: a module that failed to load,
    link or run. A read the server refused (the token test's 401) is logged by the browser as
    a failed resource too, and the page shows it itself."""
    if "Content Security Policy" in message.text:
        return message.text
    if message.type != "error":
        return None
    where = message.location.get("url", "")
    if message.text.startswith("Failed to load resource") and "/static/" not in where:
        return None
    return f"console error: {message.text} ({where})"


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """The page at `url`, and the script errors and policy violations it reports as it goes.
    Its modules are fetched, linked and run before the load event, so one that failed shows
    here at once rather than as an element that never appears."""
    page = await browser.new_page(viewport={"width": 1440, "height": 900})
    problems: list[str] = []

    def report(problem: str) -> None:
        problems.append(problem)
        # Also in the captured output of a test that fails before it checks `problems`.
        print(f"the page reported: {problem}", file=sys.stderr)

    def console(message: ConsoleMessage) -> None:
        if found := console_problem(message):
            report(found)

    # A module the browser could not fetch is also said here, with its status.
    def response(answer: Response) -> None:
        if "/static/" in answer.url and answer.status >= 400:
            report(f"{answer.status} for {answer.url}")

    # Not one the page itself gave up by navigating (a reload while the favicon loads).
    def failed(request: Request) -> None:
        if "/static/" in request.url and request.failure != "net::ERR_ABORTED":
            report(f"{request.failure} for {request.url}")

    page.on("pageerror", lambda error: report(f"script error: {error}"))
    page.on("console", console)
    page.on("response", response)
    page.on("requestfailed", failed)
    await page.goto(url)
    assert problems == [], problems
    return page, problems


async def set_as_of(page: Page, text: str, day: str) -> None:
    await page.fill("#as-of", text)
    await page.press("#as-of", "Enter")
    await expect(page.locator("#company-view .known")).to_contain_text(f"As of {day} ")


async def ids(locator: Locator) -> list[str]:
    found: list[str] = await locator.evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    return found


async def assert_shows(page: Page, company: dict[str, Any]) -> None:
    """The company view lists exactly the API's state: each list, and `possible` apart."""
    view = page.locator("#company-view")
    for section in STATE_SECTIONS:
        shown = await ids(view.locator(f'[data-section="{section}"] .item'))
        assert shown == [item["id"] for item in company[section]], section
    possible = await ids(view.locator('[data-section="possible"] .item.possible'))
    assert possible == [item["id"] for item in company["possible"]]
    assert await view.locator(".item.possible").count() == len(company["possible"])


async def test_the_dashboard_in_a_browser(
    database: Database, browser: Browser, tmp_path: Path
) -> None:
    server = Server(database.url)
    await server.start()
    try:
        page, problems = await open_page(browser, server.url)
        await page.evaluate("window.sameDocument = true")  # gone if the page ever reloads
        cards = page.locator("#chronology .card")
        status = page.locator("#status")

        # (1) The seeded chronology, one card per event the API lists, and the swimlanes.
        chronology = (await server.get("v1/chronology?limit=1000"))["events"]
        companies = (await server.get("v1/companies"))["companies"]
        await expect(cards).to_have_count(len(chronology))
        assert await ids(cards) == [e["id"] for e in reversed(chronology)]  # newest first
        await expect(page.locator("#count")).to_have_text(f"{len(chronology)} events")
        letter = page.locator(f'#chronology .card[data-id="{LETTER["id"]}"]')
        await expect(letter).to_contain_text("Wu Yongming")
        await expect(letter.locator(".date")).to_have_text("2023-09-12")
        await expect(letter.locator(".confidence")).to_have_text("✓ confirmed")
        tongyi = page.locator(f'#chronology .card[data-id="{TONGYI["id"]}"]')
        await expect(tongyi.locator(".title")).to_have_text("Tongyi Qianwen launched")
        # A fuzzy date as written (`~2023-Q1` for `2023-Q1~`), its range on hover.
        occurred = next(e["occurred"] for e in chronology if e["id"] == TONGYI["id"])
        assert occurred["hi"] > occurred["lo"]
        await expect(tongyi.locator(".date")).to_have_text(shown_date(occurred))
        await expect(tongyi.locator(".date")).to_have_attribute("title", described_date(occurred))
        quote = tongyi.locator(".source blockquote")
        await expect(quote).to_be_hidden()
        await tongyi.locator(".source summary").click()
        await expect(quote).to_have_text(TONGYI["source"]["quote"])
        await expect(page.locator("#lanes .lane")).to_have_count(len(companies))
        await expect(page.locator("#lanes .mark")).to_have_count(len(chronology))
        await expect(page.locator(f'#lanes .mark.ranged[data-id="{TONGYI["id"]}"]')).to_have_count(
            1
        )
        await expect(status).to_have_attribute("data-state", "live")

        # (2) An event appended over HTTP appears within 2 s, its text as text, never markup.
        hostile = '<img src=x onerror="window.pwned=1"><b>ERNIE 4.0</b>'
        live = event_in(
            company="baidu",
            type="model.launched",
            occurred="2023-10-17",
            data={"model": hostile, "stage": "public"},
            confidence="confirmed",
            source={"publisher": "Baidu World", "quote": "<script>window.pwned=2</script>"},
        )
        await server.append(live)
        card = page.locator(f'#chronology .card[data-id="{live["id"]}"]')
        await expect(card).to_be_visible(timeout=2000)
        await expect(card.locator(".title")).to_have_text(f"{hostile} launched (public)")
        assert await card.locator("img, b, script").count() == 0
        assert await page.evaluate("window.pwned") is None
        await expect(cards).to_have_count(len(chronology) + 1)
        await expect(page.locator("#ticker")).to_contain_text("ERNIE 4.0")
        # An amendment arrives the same way: a retraction takes the card away.
        retraction = event_in(
            company="baidu",
            type="event.retracted",
            occurred="2023-10-18",
            data={"target": live["id"], "reason": "a test of the page"},
        )
        last = (await server.append(retraction))["position"]
        await expect(card).to_have_count(0, timeout=2000)
        await expect(cards).to_have_count(len(chronology))
        await expect(page.locator("#ticker")).to_contain_text("retracted: ")

        # (3) The company view as of a day: the CEO letter of 2023-09-12 appears on its day.
        await page.select_option("#company-select", "alibaba")
        await set_as_of(page, "2023-09-11", "2023-09-11")
        before = await server.get("v1/companies/alibaba?as_of=2023-09-11")
        assert before["letters"] == []
        await assert_shows(page, before)
        letter_item = page.locator(f'#company-view .item[data-id="{LETTER["id"]}"]')
        await expect(letter_item).to_have_count(0)
        await page.click("#as-of-next")  # one day later
        await expect(page.locator("#company-view .known")).to_contain_text("As of 2023-09-12 ")
        on_the_day = await server.get("v1/companies/alibaba?as_of=2023-09-12")
        assert [item["id"] for item in on_the_day["letters"]] == [LETTER["id"]]
        await assert_shows(page, on_the_day)
        await expect(page.locator('#company-view [data-section="letters"]')).to_contain_text(
            "Wu Yongming"
        )
        # A fuzzy as-of stands for the last day of its period.
        await set_as_of(page, "2023-Q3", "2023-09-30")
        await assert_shows(page, await server.get("v1/companies/alibaba?as_of=2023-09-30"))
        await page.fill("#as-of", "2023-13")
        await page.press("#as-of", "Enter")
        await expect(page.locator("#as-of-note")).to_contain_text("is not a date")

        # Pinduoduo's team, "2023-11~", is possible mid-November and definite at the year's end.
        await page.select_option("#company-select", "pinduoduo")
        await set_as_of(page, "2023-11-15", "2023-11-15")
        mid = await server.get("v1/companies/pinduoduo?as_of=2023-11-15")
        assert PINDUODUO_TEAM["id"] in [item["id"] for item in mid["possible"]]
        await assert_shows(page, mid)
        team = page.locator(f'#company-view .item[data-id="{PINDUODUO_TEAM["id"]}"]')
        await expect(team).to_have_class("item possible")
        await expect(team.locator(".possible-badge")).to_have_text("possible")
        await set_as_of(page, "2023", "2023-12-31")
        end = await server.get("v1/companies/pinduoduo?as_of=2023-12-31")
        assert PINDUODUO_TEAM["id"] in [item["id"] for item in end["teams"]]
        await assert_shows(page, end)
        await expect(team).to_have_class("item")

        # (4) Filters narrow the chronology and the swimlanes to what the API answers.
        for company, kind in [("baidu", ""), ("baidu", "model.launched"), ("", "team.formed")]:
            await page.select_option("#filter-company", company)
            await page.select_option("#filter-type", kind)
            query = f"&company={company}" * bool(company) + f"&type={kind}" * bool(kind)
            expected = (await server.get(f"v1/chronology?limit=1000{query}"))["events"]
            await expect(cards).to_have_count(len(expected))
            assert await ids(cards) == [e["id"] for e in reversed(expected)]
            marks = await ids(page.locator("#lanes .mark"))
            assert sorted(marks) == sorted(e["id"] for e in expected)
        await page.select_option("#filter-company", "")
        await page.select_option("#filter-type", "")
        await expect(cards).to_have_count(len(chronology))

        # (6) What a person sees, kept for a look.
        await page.select_option("#company-select", "alibaba")
        await set_as_of(page, "2023-09-12", "2023-09-12")
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, artifacts(tmp_path), "dashboard.png")

        # (5) The server restarts on the same database and port; the page's EventSource
        # reconnects with its last id and the next event still arrives, with no reload.
        await server.stop()
        await expect(status).not_to_have_attribute("data-state", "live", timeout=5000)
        stream = re.compile(r".*/v1/stream\?.*")
        async with page.expect_request(stream, timeout=15_000) as reconnect:
            await server.start()
        assert (await (await reconnect.value).all_headers())["last-event-id"] == str(last)
        late = event_in(
            company="tencent",
            type="statement.made",
            occurred="2023-11-20",
            data={"speaker": "Pony Ma", "summary": "Said after the restart"},
        )
        await server.append(late)
        await expect(page.locator(f'#chronology .card[data-id="{late["id"]}"]')).to_be_visible(
            timeout=15_000
        )
        await expect(status).to_have_attribute("data-state", "live")
        await expect(cards).to_have_count(len(chronology) + 1)  # nothing twice
        assert await page.evaluate("window.sameDocument") is True
        assert problems == []
    finally:
        await server.stop()


async def post_batches(server: Server, bodies: list[dict[str, Any]]) -> None:
    """Append many events over HTTP, a thousand to a request."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession() as http:
        for start in range(0, len(bodies), 1000):
            batch = {"events": bodies[start : start + 1000]}
            async with http.post(server.url + "v1/events", json=batch, headers=headers) as answer:
                assert answer.status == 201, await answer.text()


async def test_a_large_log_shows_its_newest_events_and_stays_fast(
    tmp_path: Path, browser: Browser
) -> None:
    """25,000 events from 2000 to 2025: the page keeps the newest 20,000, says which, draws a
    bounded number of cards, and a live event costs little of the page's main thread."""
    server = Server(tmp_path / "large.db")
    await server.start()
    try:
        first = date(2000, 1, 1)
        span = (date(2025, 12, 31) - first).days
        count = 25_000
        bodies = [
            event_in(
                company=f"lab-{i % 8}",
                type="statement.made",
                occurred=(first + timedelta(days=i * span // (count - 1))).isoformat(),
                data={"speaker": f"Speaker {i}", "summary": f"Statement {i}"},
            )
            for i in range(count)
        ]
        seeded = (await server.get("v1/chronology?limit=1000"))["events"]
        await post_batches(server, bodies)
        total = sum(c["events"] for c in (await server.get("v1/companies"))["companies"])
        assert total == len(seeded) + count
        # The 20,000 newest in the API's order, (lo, hi, position): where they begin.
        order = sorted(
            [(e["occurred"]["lo"], e["occurred"]["hi"], e["position"]) for e in seeded]
            + [
                (b["occurred"], (date.fromisoformat(b["occurred"]) + timedelta(1)).isoformat(), i)
                for i, b in enumerate(bodies, start=len(seeded) + 1)
            ]
        )
        oldest_shown = order[-20_000][0]

        page, problems = await open_page(browser, server.url)
        cards = page.locator("#chronology .card")
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")
        await expect(page.locator("#count")).to_have_text("20000 events", timeout=15_000)
        # Newest first: the top card is the newest event, not one from 2000.
        assert await cards.first.get_attribute("data-id") == bodies[-1]["id"]
        assert await cards.count() == 500  # a bounded number of cards, and a way to more
        await expect(page.locator("#more")).to_be_visible()
        # The page says which range it shows.
        window = page.locator("#window")
        await expect(window).to_be_visible()
        await expect(window).to_contain_text(
            f"showing events from {oldest_shown} on; {total - 20_000} older not shown"
        )

        # A live event appears within 2 s, on top, without redrawing what it does not change
        # (a full re-render of 20,000 cards blocked the page for 2 to 4 s): the cards already
        # drawn, and the marks of the other lanes, are the same DOM nodes afterwards.
        tag = """() => {
            const cards = document.querySelectorAll('#chronology .card');
            const kept = [cards[0], cards[250], cards[cards.length - 1],
                          ...document.querySelectorAll('#lanes .mark')].filter(Boolean);
            window.keptNodes = kept.map(node => [node, node.dataset.id]);
            return window.keptNodes.length;
        }"""
        assert await page.evaluate(tag) > 3
        live = event_in(
            company="lab-3",
            type="statement.made",
            occurred="2026-01-02",
            data={"speaker": "Live", "summary": "Said while 20,000 events are shown"},
        )
        await server.append(live)
        card = page.locator(f'#chronology .card[data-id="{live["id"]}"]')
        await expect(card).to_be_visible(timeout=2000)
        assert await cards.first.get_attribute("data-id") == live["id"]
        await expect(window).to_contain_text(f"{total + 1 - 20_000} older not shown")
        live_mark = page.locator(f'#lanes .mark[data-id="{live["id"]}"]')
        await expect(live_mark).to_have_count(1, timeout=3000)  # swimlanes redraw, throttled
        kept = """() => {
            const gone = {cards: 0, lanes: new Set(), marks: 0};
            for (const [node] of window.keptNodes.filter(([node]) => !node.isConnected)) {
                if (node.classList.contains('card')) { gone.cards += 1; continue; }
                gone.marks += 1;
                gone.lanes.add(node.closest('.lane')?.dataset.company);
            }
            return {cards: gone.cards, marks: gone.marks, lanes: [...gone.lanes].sort()};
        }"""
        outcome = await page.evaluate(kept)
        # One card drops below the 500 drawn; the lanes redrawn are lab-3's, which gained the
        # event, and the one whose oldest event left the window: not the other six.
        assert outcome["cards"] <= 1, outcome
        assert "lab-3" in outcome["lanes"] and len(outcome["lanes"]) <= 2, outcome
        assert outcome["marks"] < 2 * 20_000 / 8 + 10, outcome
        await expect(cards).to_have_count(500)
        assert await page.locator(f'#lanes .mark[data-id="{live["id"]}"]').count() == 1
        await page.click("#more")
        await expect(cards).to_have_count(1000)

        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, artifacts(tmp_path), "dashboard-large.png")
        assert problems == []
    finally:
        await server.stop()


async def test_amendments_apply_in_the_order_they_came(tmp_path: Path, browser: Browser) -> None:
    """Retract and reinstate one event back to back, again and again: the page ends where the
    API does, however the target's reads come back."""
    server = Server(tmp_path / "amend.db")
    await server.start()
    try:
        page, problems = await open_page(browser, server.url)
        cards = page.locator("#chronology .card")
        chronology = (await server.get("v1/chronology?limit=1000"))["events"]
        await expect(cards).to_have_count(len(chronology))
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")
        target = TONGYI["id"]
        card = page.locator(f'#chronology .card[data-id="{target}"]')

        async def amend(kind: str) -> None:
            data = {"target": target, "reason": f"{kind} in a hurry"}
            await server.append(
                event_in(company="alibaba", type=f"event.{kind}", occurred="2023-12", data=data)
            )

        # The retraction's read of its target answers late, after the reinstatement's: a page
        # that applied answers as they came would end with the card retracted.
        held: list[int] = []

        async def late(route: Route) -> None:
            answer = await route.fetch()  # the state right now: retracted
            held.append(1)
            if len(held) == 1:
                await asyncio.sleep(0.6)
            await route.fulfill(response=answer)

        await page.route(f"**/v1/events/{target}", late)
        await amend("retracted")
        for _ in range(40):  # until the page has asked, while only the retraction is stored
            if held:
                break
            await asyncio.sleep(0.05)
        assert held
        await amend("reinstated")
        await expect(page.locator("#ticker")).to_contain_text("reinstated: ", timeout=2000)
        await expect(card).to_have_count(1)
        await page.unroute(f"**/v1/events/{target}")
        for _ in range(3):
            await amend("retracted")
            await amend("reinstated")
        detail = await server.get(f"v1/events/{target}")
        assert detail["effective"] is not None
        await expect(page.locator("#ticker")).to_contain_text("reinstated: ", timeout=2000)
        await expect(card).to_have_count(1)
        await expect(cards).to_have_count(len(chronology))
        # The page applies messages one at a time, in order: once a marker appended after
        # them is shown, nothing of theirs is still to come to take the card away again.
        markers: list[str] = []

        async def settled() -> None:
            marker = event_in(company="zhipu", occurred="2023-08", data={"model": "marker"})
            await server.append(marker)
            markers.append(marker["id"])
            await expect(
                page.locator(f'#chronology .card[data-id="{marker["id"]}"]')
            ).to_have_count(1)

        await settled()
        await expect(card).to_have_count(1)
        await expect(card.locator(".title")).to_have_text("Tongyi Qianwen launched")

        await amend("retracted")
        await amend("reinstated")
        await amend("retracted")
        assert (await server.get(f"v1/events/{target}"))["effective"] is None
        await expect(card).to_have_count(0, timeout=2000)
        await settled()
        await expect(card).to_have_count(0)
        await expect(cards).to_have_count(len(chronology) - 1 + len(markers))
        assert problems == []
    finally:
        await server.stop()


async def test_reads_behind_a_token_in_a_browser(tmp_path: Path, browser: Browser) -> None:
    server = Server(tmp_path / "private.db", TIMELINE_READ_AUTH="1")
    await server.start()
    try:
        page, problems = await open_page(browser, server.url)
        # Without a token, the problem's detail is shown and the token form opens.
        await expect(page.locator("#error")).to_be_visible()
        await expect(page.locator("#error-title")).to_have_text("Unauthorized")
        await expect(page.locator("#error-detail")).to_contain_text("Authorization: Bearer")
        await expect(page.locator("#token-form")).to_be_visible()
        await page.fill("#token-input", "tl_wrong")
        await page.click("#token-form button[type=submit]")
        await expect(page.locator("#error-detail")).to_contain_text("not known to this server")
        await expect(page.locator("#token-form")).to_be_visible()
        await page.fill("#token-input", ADMIN)
        await page.click("#token-form button[type=submit]")
        cards = page.locator("#chronology .card")
        seeded = (await server.get("v1/chronology?limit=1000", token=ADMIN))["events"]
        await expect(cards).to_have_count(len(seeded))
        await expect(page.locator("#error")).to_be_hidden()
        # The live feed authenticates by ?access_token=, as EventSource sends no headers.
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")
        live = event_in(company="meituan", occurred="2023-12", data={"model": "Meituan LLM"})
        await server.append(live)
        await expect(page.locator(f'.card[data-id="{live["id"]}"]')).to_be_visible(timeout=2000)
        # The token stays in this browser.
        await page.reload()
        await expect(cards).to_have_count(len(seeded) + 1)
        assert await page.evaluate("localStorage.getItem('timeline.token')") == ADMIN
        assert problems == []
    finally:
        await server.stop()


async def test_the_company_view_lists_executives(tmp_path: Path, browser: Browser) -> None:
    """An appointment is listed with its person, role and date; a departure that is only
    possible as of the day marks it "leaving?", and one that is definite ends it."""
    server = Server(tmp_path / "executives.db")
    await server.start()
    try:
        page, problems = await open_page(browser, server.url + "#company=moonshot&as_of=2024-06-30")
        view = page.locator("#company-view")
        # A company the log does not know yet: the server's 404, until its first event.
        await expect(view.locator(".problem")).to_contain_text("Not found")
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")
        appointed = await server.append(
            event_in(
                company="moonshot",
                type="executive.appointed",
                occurred="2023-09-10",
                data={"person": "Eddie Wu", "role": "CEO", "note": "succeeds Daniel Zhang"},
                confidence="confirmed",
            )
        )
        section = view.locator('[data-section="executives"]')
        item = section.locator(f'.item[data-id="{appointed["id"]}"]')
        await expect(item.locator(".person")).to_have_text("Eddie Wu")  # live, with no reload
        await expect(view.locator(".known")).to_contain_text("As of 2024-06-30 ")
        await expect(item.locator(".role")).to_have_text("CEO")
        await expect(item.locator(".since")).to_have_text("since 2023-09-10")
        await expect(item.locator(".leaving-badge")).to_have_count(0)
        await expect(view.locator(".chips")).to_contain_text("1 executive")
        departed = await server.append(
            event_in(
                company="moonshot",
                type="executive.departed",
                occurred="2024",
                data={"person": "Eddie Wu", "role": "CEO", "successor": "to be named"},
            )
        )
        await expect(item.locator(".leaving-badge")).to_have_text("leaving?")
        await expect(item.locator(".leaving-note")).to_contain_text("departure 2024 (reported)")
        await expect(item).to_have_class(re.compile(r"\bleaving\b"))
        mid = await server.get("v1/companies/moonshot?as_of=2024-06-30")
        assert mid["executives"][0]["departure"]["id"] == departed["id"]
        assert departed["id"] in [p["id"] for p in mid["possible"]]
        await assert_shows(page, mid)
        await section.scroll_into_view_if_needed()
        await screenshot(page.locator(".company-panel"), artifacts(tmp_path), "executives.png")
        # Once the departure is definite, the appointment has ended: no executive is listed.
        await set_as_of(page, "2024", "2024-12-31")
        end = await server.get("v1/companies/moonshot?as_of=2024-12-31")
        assert end["executives"] == []
        await assert_shows(page, end)
        await expect(section).to_have_count(0)
        # Before the appointment, nothing either; on its day, it is there and not leaving.
        await set_as_of(page, "2023-09-10", "2023-09-10")
        await expect(item.locator(".person")).to_have_text("Eddie Wu")
        await expect(item.locator(".leaving-badge")).to_have_count(0)
        assert problems == []
    finally:
        await server.stop()


async def test_the_address_is_read_and_followed(tmp_path: Path, browser: Browser) -> None:
    """An as-of in the address that is not a date is said, not replaced by today; editing the
    address's hash in the open tab is followed, with no reload."""
    server = Server(tmp_path / "address.db")
    await server.start()
    try:
        page, problems = await open_page(browser, server.url + "#company=alibaba&as_of=2023-13-45")
        await page.evaluate("window.sameDocument = true")
        error = page.locator("#error")
        view = page.locator("#company-view")
        cards = page.locator("#chronology .card")
        seeded = (await server.get("v1/chronology?limit=1000"))["events"]
        await expect(error).to_be_visible()
        await expect(page.locator("#error-title")).to_have_text(
            "The address holds a value the page cannot use"
        )
        await expect(page.locator("#error-list")).to_contain_text("as_of: “2023-13-45” is not")
        await expect(page.locator("#as-of")).to_have_value("2023-13-45")
        await expect(page.locator("#as-of-note")).to_have_class(re.compile(r"\binvalid\b"))
        await expect(view.locator(".problem")).to_contain_text("2023-13-45")
        # The chronology loads as ever, and the banner stays: the company view is not today's.
        await expect(cards).to_have_count(len(seeded))
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")
        await expect(error).to_be_visible()
        await expect(view.locator(".known")).to_have_count(0)
        assert "as_of=2023-13-45" in page.url
        await screenshot(page, artifacts(tmp_path), "bad-address.png")

        # The hash edited in the open tab: the page reads it again and redraws.
        await page.evaluate("location.hash = 'company=baidu&as_of=2023-06-30'")
        await expect(view.locator(".known")).to_contain_text("As of 2023-06-30 ")
        await expect(view.locator(".company-name")).to_have_text("Baidu")
        await expect(page.locator("#company-select")).to_have_value("baidu")
        await expect(page.locator("#as-of")).to_have_value("2023-06-30")
        await expect(error).to_be_hidden()
        await assert_shows(page, await server.get("v1/companies/baidu?as_of=2023-06-30"))
        await page.evaluate("location.hash = 'company=baidu&as_of=2023-Q1&filter_type=team.formed'")
        await expect(view.locator(".known")).to_contain_text("As of 2023-03-31 ")
        teams = (await server.get("v1/chronology?limit=1000&type=team.formed"))["events"]
        await expect(cards).to_have_count(len(teams))
        await expect(page.locator("#filter-type")).to_have_value("team.formed")
        # A bad as-of edited in is said too; a good one typed in the page clears it.
        await page.evaluate("location.hash = 'company=baidu&as_of=yesterday'")
        await expect(error).to_be_visible()
        await expect(page.locator("#error-list")).to_contain_text("“yesterday” is not a date")
        await expect(view.locator(".problem")).to_contain_text("yesterday")
        await set_as_of(page, "2023-09-12", "2023-09-12")
        await expect(error).to_be_hidden()
        assert page.url.endswith("#company=baidu&as_of=2023-09-12")
        assert await page.evaluate("window.sameDocument") is True
        assert problems == []
    finally:
        await server.stop()


async def test_known_at_travels_back_and_says_what_changed(
    tmp_path: Path, browser: Browser
) -> None:
    """An event, then a correction after S: known at S, the swimlanes, cards and company view
    show the uncorrected event and live entries are counted, not applied; "what changed since
    S" lists the correction, marked corrected, and the company's item as changed."""
    server = Server(tmp_path / "travel.db")
    await server.start()
    try:
        launch = await server.append(
            event_in(
                company="zhipu",
                type="model.launched",
                occurred="2023-08-31",
                data={"model": "GLM Original", "stage": "announced"},
            )
        )
        known = launch["position"]
        correction = await server.append(
            event_in(
                company="zhipu",
                type="event.corrected",
                occurred="2023-09",
                data={
                    "target": launch["id"],
                    "data": {"model": "GLM Corrected", "stage": "public"},
                },
            )
        )
        hash_ = f"#company=zhipu&as_of=2023-12-31&known_at={known}"
        page, problems = await open_page(browser, server.url + hash_)
        await page.evaluate("window.sameDocument = true")
        cards = page.locator("#chronology .card")
        view = page.locator("#company-view")
        card = page.locator(f'#chronology .card[data-id="{launch["id"]}"]')
        item = view.locator(f'[data-section="models"] .item[data-id="{launch["id"]}"]')
        then = (await server.get(f"v1/chronology?limit=1000&known_at={known}"))["events"]
        await expect(cards).to_have_count(len(then))
        await expect(card.locator(".title")).to_have_text("GLM Original launched (announced)")
        await expect(item.locator(".title")).to_have_text("GLM Original launched (announced)")
        await expect(view.locator(".known")).to_contain_text(f"known at position {known} ")
        await assert_shows(
            page, await server.get(f"v1/companies/zhipu?as_of=2023-12-31&known_at={known}")
        )
        await expect(page.locator("#lanes .mark")).to_have_count(len(then))
        await expect(page.locator(f'#lanes .mark[data-id="{launch["id"]}"]')).to_have_count(1)
        await expect(page.locator("#head")).to_have_text(f"known at {known}")
        await expect(page.locator("#known-at")).to_have_value(str(known))
        await expect(page.locator("#pinned")).to_contain_text(f"Known at position {known}")
        await expect(page.locator("#known-note")).to_have_text("+1 newer, not shown")
        await expect(page.locator("#status")).to_have_attribute("data-state", "live")

        # What changed since S (the known-at point): the correction, marked as corrected.
        entry = page.locator(f'#changes-log .change[data-position="{correction["position"]}"]')
        await expect(entry).to_have_class(re.compile(r"\bchange-corrected\b"))
        await expect(entry.locator(".kind-badge")).to_have_text("✎ corrected")
        await expect(entry.locator('.diff [data-field="model"]')).to_have_text(
            "model GLM Original → GLM Corrected"
        )
        await expect(page.locator("#changes-log .change")).to_have_count(1)
        changed = page.locator(f'#company-changes .change[data-id="{launch["id"]}"]')
        await expect(changed).to_have_class(re.compile(r"\bchange-changed\b"))
        await expect(changed.locator(".kind-badge")).to_have_text("✎ changed")
        await expect(changed).to_have_attribute("data-list", "models")
        await expect(changed.locator('.diff [data-field="stage"]')).to_have_text(
            "stage announced → public"
        )

        # Live entries keep coming: counted, not applied to the view known at S.
        live = await server.append(
            event_in(company="zhipu", occurred="2023-10", data={"model": "GLM Live"})
        )
        await expect(page.locator("#known-note")).to_have_text("+2 newer, not shown")
        await expect(cards).to_have_count(len(then))
        await expect(card.locator(".title")).to_have_text("GLM Original launched (announced)")
        # Refresh re-reads the changes, up to the last position the page has seen.
        await page.click("#since-refresh")
        added = page.locator(f'#changes-log .change[data-position="{live["position"]}"]')
        await expect(added).to_have_class(re.compile(r"\bchange-added\b"))
        await expect(added.locator(".kind-badge")).to_have_text("+ added")
        retraction = await server.append(
            event_in(
                company="zhipu",
                type="event.retracted",
                occurred="2023-11",
                data={"target": live["id"], "reason": "never launched"},
            )
        )
        await expect(page.locator("#known-note")).to_have_text("+3 newer, not shown")
        await page.click("#since-refresh")
        gone = page.locator(f'#changes-log .change[data-position="{retraction["position"]}"]')
        await expect(gone).to_have_class(re.compile(r"\bchange-retracted\b"))
        await expect(gone.locator(".kind-badge")).to_have_text("✕ retracted")
        await expect(gone.locator(".title")).to_have_text("GLM Live launched")
        await expect(gone).to_contain_text("reason: never launched")
        await page.evaluate("window.scrollTo(0, 0)")
        await screenshot(page, artifacts(tmp_path), "known-at.png")
        await screenshot(page.locator(".changes-panel"), artifacts(tmp_path), "changes.png")

        # Back to now: the corrected event, and the live one, as the log has them.
        await page.click("#known-now")
        await expect(card.locator(".title")).to_have_text("GLM Corrected launched (public)")
        await expect(item.locator(".title")).to_have_text("GLM Corrected launched (public)")
        await expect(page.locator(f'#chronology .card[data-id="{live["id"]}"]')).to_have_count(0)
        await expect(cards).to_have_count(len(then))  # the live event came and was retracted
        await expect(page.locator("#pinned")).to_be_hidden()
        await expect(page.locator("#head")).to_have_text(re.compile(r"^position \d+$"))
        assert "known_at" not in page.url
        await expect(page.locator("#changes-log .change")).to_have_count(0)

        # The control in the header takes a time as well as a position.
        recorded = launch["recorded"]
        await page.fill("#known-at", recorded)
        await page.press("#known-at", "Enter")
        await expect(card.locator(".title")).to_have_text("GLM Original launched (announced)")
        await expect(page.locator("#head")).to_have_text(f"known at {known}")
        assert f"known_at={recorded.replace(':', '%3A')}" in page.url
        # A point typed in the panel: since just before the launch, the launch was added.
        await page.fill("#since", str(known - 1))
        await page.press("#since", "Enter")
        first = page.locator(f'#changes-log .change[data-position="{known}"]')
        await expect(first).to_have_class(re.compile(r"\bchange-added\b"))
        await expect(page.locator("#changes-log .change")).to_have_count(4)
        # A known-at edited into the address is followed; one past the head is said.
        await page.evaluate("location.hash = 'company=zhipu&known_at=99999'")
        await expect(page.locator("#error-title")).to_have_text("Position conflict")
        await page.evaluate(f"location.hash = 'company=zhipu&as_of=2023-12-31&known_at={known}'")
        await expect(card.locator(".title")).to_have_text("GLM Original launched (announced)")
        await expect(page.locator("#error")).to_be_hidden()
        assert await page.evaluate("window.sameDocument") is True
        assert problems == []
    finally:
        await server.stop()


async def window_of(page: Page) -> tuple[date, date]:
    """The swimlanes' window as the address keeps it, once it is there."""
    await page.wait_for_function("() => /[#&]from=.*&to=/.test(location.hash)")
    query = dict(
        part.split("=", 1) for part in (await page.evaluate("location.hash"))[1:].split("&")
    )
    return date.fromisoformat(query["from"]), date.fromisoformat(query["to"])


async def hash_changes(page: Page, before: str) -> str:
    await page.wait_for_function("before => location.hash !== before", arg=before)
    hash_: str = await page.evaluate("location.hash")
    return hash_


async def test_the_swimlanes_zoom_pan_and_say_their_ranges(
    tmp_path: Path, browser: Browser
) -> None:
    """The wheel zooms around the pointer, a drag pans, the brush picks a window, and the
    window is kept in the address; a range wider than the window is faint, one "on or before"
    fades in from the left edge, each says its exact range on hover; a long name is cut only
    with a tooltip."""
    server = Server(tmp_path / "zoom.db")
    await server.start()
    try:
        long_name = "The Extraordinarily Long-Named Artificial Intelligence Laboratory of Hangzhou"
        await server.append(
            event_in(
                company="longname",
                type="company.registered",
                occurred="2020",
                data={"name": long_name},
            )
        )
        decade = await server.append(
            event_in(company="longname", occurred="202X", data={"model": "Decade Model"})
        )
        early = await server.append(
            event_in(company="longname", occurred="[..2023-06]", data={"model": "Early Model"})
        )
        day = await server.append(
            event_in(company="longname", occurred="2023-05-15", data={"model": "Day Model"})
        )
        page, problems = await open_page(browser, server.url + "#company=longname")
        chronology = (await server.get("v1/chronology?limit=1000"))["events"]
        marks = page.locator("#lanes .mark")
        await expect(marks).to_have_count(len(chronology))
        await expect(page.locator("#lanes-window")).to_contain_text("all: ")
        ticks = page.locator("#lanes .tick")
        # The whole range is the events' (on or before counts from its end): not from year 1.
        first_tick = (await ticks.all_text_contents())[0]
        assert int(first_tick[:4]) >= 1900, first_tick

        # "On or before": a fade from the left edge, with its exact range on hover.
        fade = page.locator(f'#lanes .mark[data-id="{early["id"]}"]')
        await expect(fade).to_have_class(re.compile(r"\bbefore\b"))
        await expect(fade).to_have_attribute("mask", "url(#fade-left)")
        track = page.locator("#lanes .brush-track")
        left_edge = float(await track.get_attribute("x") or "nan")
        assert float(await fade.get_attribute("x") or "nan") == pytest.approx(left_edge)
        await fade.dispatch_event("mouseover")
        await expect(fade.locator("title")).to_contain_text(
            f"[..2023-06] · 0001-01-01{DASH}2023-07-01"
        )
        await expect(fade.locator("title")).to_contain_text("on or before 2023-06-30")
        # A long name is cut to fit, and says itself whole on hover.
        label = page.locator('#lanes .lane[data-company="longname"] .lane-label')
        await expect(label).to_have_class("lane-label cut")
        shown = await label.evaluate("node => node.firstChild.textContent")
        assert shown.endswith("…") and long_name.startswith(shown[:-1].rstrip()), shown
        await expect(label.locator("title")).to_have_text(f"{long_name} (longname)")
        await expect(page.locator("#company-select")).to_have_attribute("title", long_name)

        # The wheel zooms in around the pointer: the day under it stays where it was.
        dot = page.locator(f'#lanes .mark[data-id="{day["id"]}"]')
        spot = await dot.bounding_box()
        assert spot is not None
        x, y = spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2
        await page.mouse.move(x, y)
        await page.mouse.wheel(0, -800)
        start, end = await window_of(page)
        assert start <= date(2023, 5, 15) <= end
        assert (end - start).days < 3 * 365
        await expect(page.locator("#lanes-window")).to_have_text(f"{start} {DASH} {end}")
        await expect(page.locator("#zoom-fit")).to_be_visible()
        moved = await dot.bounding_box()
        assert moved is not None and abs(moved["x"] + moved["width"] / 2 - x) < 12
        # Zoomed in, the decade is wider than the window: faint, its range said on hover.
        wide = page.locator(f'#lanes .mark[data-id="{decade["id"]}"]')
        await expect(wide).to_have_class(re.compile(r"\bwide\b"))
        await wide.dispatch_event("mouseover")
        await expect(wide.locator("title")).to_contain_text(f"202X · 2020-01-01{DASH}2030-01-01")
        await expect(wide.locator("title")).to_contain_text("wider than the window")
        before = await page.evaluate("location.hash")
        await page.mouse.wheel(0, -600)
        await hash_changes(page, before)
        narrower = await window_of(page)
        assert (narrower[1] - narrower[0]) < (end - start)
        start, end = narrower

        # A drag across the lanes pans: dragged right, the window moves earlier. The click that
        # ends a drag does not pick a day for the company view.
        before = await page.evaluate("location.hash")
        await page.mouse.move(x, y)
        await page.mouse.down()
        await page.mouse.move(x + 150, y, steps=6)
        await page.mouse.move(x + 300, y, steps=6)
        await page.mouse.up()
        await hash_changes(page, before)
        panned = await window_of(page)
        assert panned[0] < start and panned[1] < end
        assert abs((panned[1] - panned[0]) - (end - start)).days <= 1
        assert "as_of=" not in await page.evaluate("location.hash")
        await screenshot(page.locator(".lanes-panel"), artifacts(tmp_path), "swimlanes-zoomed.png")

        # The brush: a drag across it picks that part of the whole range.
        bounds = await track.bounding_box()
        assert bounds is not None
        before = await page.evaluate("location.hash")
        middle = bounds["y"] + bounds["height"] / 2
        await page.mouse.move(bounds["x"] + bounds["width"] * 0.55, middle)
        await page.mouse.down()
        await page.mouse.move(bounds["x"] + bounds["width"] * 0.75, middle, steps=5)
        await page.mouse.move(bounds["x"] + bounds["width"] * 0.95, middle, steps=5)
        await page.mouse.up()
        await hash_changes(page, before)
        picked = await window_of(page)
        assert picked != panned and picked[1] > picked[0]
        window_rect = page.locator("#lanes .brush-window")
        rect_x = float(await window_rect.get_attribute("x") or "nan")
        expected_x = left_edge + float(await track.get_attribute("width") or "nan") * 0.55
        assert rect_x == pytest.approx(expected_x, abs=4)
        # Double-click on the brush: everything again, and the address forgets the window.
        await page.mouse.dblclick(bounds["x"] + bounds["width"] * 0.2, middle)
        await page.wait_for_function("() => !location.hash.includes('from=')")
        await expect(page.locator("#lanes-window")).to_contain_text("all: ")
        await expect(marks).to_have_count(len(chronology))

        # The window from the address: on an edit of the hash, and on a load.
        await page.evaluate("location.hash = 'company=longname&from=2023-04-01&to=2023-06-30'")
        await expect(page.locator("#lanes-window")).to_have_text(f"2023-04-01 {DASH} 2023-06-30")
        await expect(ticks.filter(has_text=re.compile(r"^2023-05"))).not_to_have_count(0)
        await expect(dot).to_have_count(1)
        await page.reload()
        await expect(page.locator("#lanes-window")).to_have_text(f"2023-04-01 {DASH} 2023-06-30")
        await page.click("#zoom-in")
        zoomed = await hash_changes(page, "#company=longname&from=2023-04-01&to=2023-06-30")
        assert "from=2023-04" in zoomed and "to=2023-06" in zoomed, zoomed
        await page.click("#zoom-fit")
        await page.wait_for_function("() => !location.hash.includes('from=')")
        await screenshot(page, artifacts(tmp_path), "swimlanes.png")
        assert problems == []
    finally:
        await server.stop()
