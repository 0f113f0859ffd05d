// The Timeline dashboard: the chronology of every company, live from /v1/stream, a swimlane
// chart and one company's state as of a date. Plain DOM: every text from the server goes in
// through textContent or a text node, never as markup.
"use strict";

(() => {
  const TYPES = {
    "company.registered": "Company registered",
    "team.formed": "Team formed",
    "model.launched": "Model launched",
    "filing.passed": "Filing passed",
    "ceo.letter": "CEO letter",
    "financial.report": "Financial report",
    "product.integrated": "Product integrated",
    "statement.made": "Statement",
  };
  const AMENDMENTS = ["event.corrected", "event.retracted", "event.reinstated"];
  // The company state's lists, each with the event type its items come from.
  const SECTIONS = [
    ["models", "Models", "model.launched", "model"],
    ["teams", "Teams", "team.formed", "team"],
    ["filings", "Filings", "filing.passed", "filing"],
    ["letters", "Letters", "ceo.letter", "letter"],
    ["statements", "Statements", "statement.made", "statement"],
    ["integrations", "Integrations", "product.integrated", "integration"],
    ["financials", "Financials", "financial.report", "financial report"],
  ];
  const STAGES = { announced: "announced", internal_test: "internal test", public: "public" };
  const PRECISION = { year: "year", quarter: "quarter", month: "month", day: "day" };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "timeline.token";
  const PAGE_SIZE = 1000;
  const MAX_EVENTS = 20000; // past this, the page keeps the newest events
  const RENDER_STEP = 500; // cards drawn at a time; "Show more" adds as many again
  const LANES_INTERVAL = 1000; // ms: live events redraw the swimlanes at most this often
  const DAY_MS = 86400000;

  const state = {
    events: new Map(), // id → the event in effective form, as the chronology gives it
    list: [], // the same events in (lo, hi, position) order
    seen: new Set(), // the companies of the loaded events
    total: 0, // the log's effective events, loaded or not (the companies' counts)
    limit: RENDER_STEP, // how many cards are drawn
    generation: 0, // bumped by each fresh load: answers for an older one are dropped
    anchor: null, // {position, hash} of the last event seen: a reconnect checks it
    companies: new Map(), // slug → {company, name, events, first, last}
    known: 0, // the position the chronology was read at
    lastId: null, // the last SSE id received
    truncated: false,
    filters: { company: "", type: "" },
    newestFirst: true,
    allYears: false,
    selected: "",
    asOf: "", // YYYY-MM-DD, or "" for today
    fresh: new Set(),
    source: null,
    retryMs: 1000,
    retryTimer: null,
    companySeq: 0,
  };

  const $ = (selector) => document.querySelector(selector);

  // ---- DOM helpers: attributes and text only, never HTML

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) =>
    build(document.createElementNS(SVG_NS, tag), attrs, children);

  // ---- the token

  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || "";
    } catch {
      return "";
    }
  }

  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      showError({ title: "Cannot keep the token", detail: "this browser refuses localStorage" });
    }
  }

  function showTokenForm(open) {
    $("#token-form").hidden = !open;
    $("#token-button").setAttribute("aria-expanded", String(open));
    $("#token-button").textContent = token() ? "Token ✓" : "Token";
    if (open) $("#token-input").focus();
  }

  // ---- HTTP and problems

  class Problem extends Error {
    constructor(status, body) {
      super(body.detail || body.title || `HTTP ${status}`);
      this.status = status;
      this.title = body.title || `HTTP ${status}`;
      this.detail = body.detail || "";
      this.errors = Array.isArray(body.errors) ? body.errors : [];
    }
  }

  async function api(path) {
    const headers = { Accept: "application/json" };
    const secret = token();
    if (secret) headers.Authorization = `Bearer ${secret}`;
    let response;
    try {
      response = await fetch(path, { headers, cache: "no-store" });
    } catch (error) {
      throw new Problem(0, {
        title: "Cannot reach the server",
        detail: `${path}: ${error.message}`,
      });
    }
    if (!response.ok) {
      let body = {};
      try {
        body = await response.json();
      } catch {
        body = { detail: `${path} answered ${response.status} ${response.statusText}` };
      }
      throw new Problem(response.status, body);
    }
    return response.json();
  }

  function showError(problem) {
    $("#error-title").textContent = problem.title || "Error";
    $("#error-detail").textContent = problem.detail || problem.message || "";
    $("#error-list").replaceChildren(
      ...(problem.errors || []).map((e) =>
        h("li", {}, `${(e.loc || []).join(" › ")}: ${e.msg || ""}`),
      ),
    );
    $("#error").hidden = false;
    if (problem.status === 401 || problem.status === 403) showTokenForm(true);
  }

  function hideError() {
    $("#error").hidden = true;
  }

  // ---- dates

  function dayNumber(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return Date.UTC(y, m - 1, d) / DAY_MS;
  }
  const isoDay = (n) => new Date(n * DAY_MS).toISOString().slice(0, 10);
  const today = () => new Date().toISOString().slice(0, 10);
  const lastDayOf = (year, month) => new Date(Date.UTC(year, month, 0)).getUTCDate();
  const pad = (n) => String(n).padStart(2, "0");

  // "2023-Q1~" → "~2023-Q1": an approximate date reads best with its tilde in front.
  function shownDate(occurred) {
    const value = occurred.value;
    return value.endsWith("~") ? `~${value.slice(0, -1)}` : value;
  }

  function describeDate(occurred) {
    const last = isoDay(dayNumber(occurred.hi) - 1);
    const range = occurred.lo === last ? occurred.lo : `${occurred.lo} to ${last}`;
    const mark = occurred.value.endsWith("~")
      ? ", approximate"
      : occurred.value.endsWith("?")
        ? ", uncertain"
        : "";
    return `${range} (${PRECISION[occurred.precision] || occurred.precision}${mark})`;
  }

  // An as-of may be fuzzy: a year, quarter or month stands for its last day.
  function resolveAsOf(text) {
    const raw = text.trim();
    if (raw === "" || raw.toLowerCase() === "today") return { day: "" };
    let match = /^(\d{4})$/.exec(raw);
    if (match) return { day: `${match[1]}-12-31`, note: `the end of ${raw}` };
    match = /^(\d{4})-[Qq]([1-4])$/.exec(raw);
    if (match) {
      const month = Number(match[2]) * 3;
      const day = `${match[1]}-${pad(month)}-${lastDayOf(Number(match[1]), month)}`;
      return { day, note: `the end of ${match[1]}-Q${match[2]}` };
    }
    match = /^(\d{4})-(\d{2})$/.exec(raw);
    if (match && Number(match[2]) >= 1 && Number(match[2]) <= 12) {
      const day = `${raw}-${pad(lastDayOf(Number(match[1]), Number(match[2])))}`;
      return { day, note: `the end of ${raw}` };
    }
    match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw);
    if (match && isoDay(dayNumber(raw)) === raw) return { day: raw };
    return { error: `“${raw}” is not a date: try 2023-09-12, 2023-09, 2023-Q3 or 2023` };
  }

  // ---- what an event says

  const joined = (parts, separator = " · ") => parts.filter(Boolean).join(separator);
  const list = (values) => (Array.isArray(values) && values.length ? values.join(", ") : "");
  const n = (items) => (Array.isArray(items) ? items.length : 0);
  const companyName = (slug) => state.companies.get(slug)?.name || slug;

  function metric(m) {
    const yoy =
      typeof m.yoy_pct === "number" ? ` (${m.yoy_pct >= 0 ? "+" : ""}${m.yoy_pct}% YoY)` : "";
    return `${m.name}: ${m.value}${m.unit ? ` ${m.unit}` : ""}${yoy}`;
  }

  // {title, summary, facts} for an event's type and data (or a state item's fields).
  function describe(type, d) {
    switch (type) {
      case "company.registered":
        return {
          title: `${d.name} registered`,
          summary: d.description,
          facts: [joined([d.country, d.parent && `part of ${d.parent}`, list(d.aliases)])],
        };
      case "team.formed":
        return {
          title: `${d.name} formed`,
          facts: [
            joined([d.location, typeof d.headcount === "number" && `${d.headcount} people`]),
            list(d.focus) && `focus: ${list(d.focus)}`,
          ],
        };
      case "model.launched":
        return {
          title: `${d.model} launched${d.stage ? ` (${STAGES[d.stage] || d.stage})` : ""}`,
          facts: [
            joined([list(d.aliases) && `also ${list(d.aliases)}`, d.parameters, list(d.modality)]),
          ],
        };
      case "filing.passed":
        return {
          title: d.model ? `${d.model} passed its filing` : "Filing passed",
          facts: [joined([d.authority, d.note])],
        };
      case "ceo.letter":
        return {
          title: d.title || `Letter from ${d.author}`,
          summary: d.summary,
          facts: [joined([d.author, d.role], ", ")],
        };
      case "financial.report":
        return {
          title: `Results for ${d.period}`,
          facts: [...(d.metrics || []).map(metric), ...(d.highlights || [])],
        };
      case "product.integrated":
        return { title: `${d.model} in ${d.product}` };
      case "statement.made":
        return { title: joined([d.speaker, d.role], ", "), summary: d.summary, facts: [d.venue] };
      default:
        return { title: TYPES[type] || type };
    }
  }

  function confidenceBadge(confidence) {
    const mark = { confirmed: "✓ ", reported: "", rumored: "? " }[confidence] ?? "";
    return h("span", { class: "confidence", "data-confidence": confidence }, mark + confidence);
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "https:" || parsed.protocol === "http:";
    } catch {
      return false;
    }
  }

  function sourceBlock(source) {
    const label = joined([source.publisher, source.title], " — ") || "source";
    const link = safeUrl(source.url)
      ? h("a", { href: source.url, rel: "noopener noreferrer", target: "_blank" }, "open")
      : null;
    if (!source.quote) return h("p", { class: "source" }, `Source: ${label} `, link);
    return h(
      "details",
      { class: "source", title: source.quote },
      h("summary", {}, `Source: ${label}`),
      h("blockquote", {}, source.quote),
      h("p", { class: "muted" }, source.published && `published ${source.published} `, link),
    );
  }

  function card(event) {
    const about = describe(event.type, event.data || {});
    return h(
      "li",
      {
        class: state.fresh.has(event.id) ? "card fresh" : "card",
        id: `event-${event.id}`,
        "data-id": event.id,
        "data-company": event.company,
        "data-type": event.type,
        "data-confidence": event.confidence,
        "data-position": event.position,
      },
      h(
        "div",
        { class: "card-meta" },
        h(
          "time",
          { class: "date", datetime: event.occurred.lo, title: describeDate(event.occurred) },
          shownDate(event.occurred),
        ),
        h(
          "button",
          { class: "company-link", type: "button", onclick: () => selectCompany(event.company) },
          companyName(event.company),
        ),
        h("span", { class: "type", "data-type": event.type }, TYPES[event.type] || event.type),
        confidenceBadge(event.confidence),
      ),
      h("h3", { class: "title" }, about.title),
      about.summary && h("p", { class: "summary" }, about.summary),
      (about.facts || []).filter(Boolean).map((fact) => h("p", { class: "fact" }, fact)),
      event.source && sourceBlock(event.source),
    );
  }

  // ---- the chronology
  //
  // state.list holds the loaded events in the API's order, (lo, hi, position) ascending; an
  // insertion or removal finds its place by binary search. Only the first RENDER_STEP cards of
  // the current order are in the page ("Show more" adds as many again), and the cards are kept
  // by id, so a live event adds, replaces or removes one card instead of drawing them all.

  function compare(a, b) {
    const [al, bl] = [a.occurred.lo, b.occurred.lo];
    if (al !== bl) return al < bl ? -1 : 1;
    const [ah, bh] = [a.occurred.hi, b.occurred.hi];
    if (ah !== bh) return ah < bh ? -1 : 1;
    return a.position - b.position;
  }

  // The first index whose event does not sort before `event`.
  function place(event) {
    const items = state.list;
    let [low, high] = [0, items.length];
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compare(items[mid], event) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  // Keep an event, unless the page shows only the newest events and this one is older than all
  // of them; past MAX_EVENTS the oldest go. True when the event is kept.
  function insertEvent(event) {
    removeEvent(event.id);
    if (state.truncated && state.list.length && compare(event, state.list[0]) < 0) return false;
    state.list.splice(place(event), 0, event);
    state.events.set(event.id, event);
    state.seen.add(event.company);
    laneDirty(event.company);
    while (state.list.length > MAX_EVENTS) {
      const gone = state.list.shift();
      state.events.delete(gone.id);
      laneDirty(gone.company);
      state.truncated = true;
    }
    return true;
  }

  function removeEvent(id) {
    const old = state.events.get(id);
    if (!old) return false;
    let index = place(old);
    if (state.list[index]?.id !== id) index = state.list.findIndex((e) => e.id === id);
    if (index >= 0) state.list.splice(index, 1);
    state.events.delete(id);
    laneDirty(old.company);
    return true;
  }

  const matches = (event) =>
    (!state.filters.company || event.company === state.filters.company) &&
    (!state.filters.type || event.type === state.filters.type);

  // The events the filters let through, in the order shown.
  function filtered() {
    const out = state.list.filter(matches);
    return state.newestFirst ? out.reverse() : out;
  }

  const cards = new Map(); // id → {event, node}: the cards in the page

  function cardNode(event) {
    const kept = cards.get(event.id);
    if (kept && kept.event === event) return kept.node;
    const node = card(event);
    if (kept) {
      const open = kept.node.querySelector("details[open]");
      if (open) node.querySelector("details")?.setAttribute("open", "");
      kept.node.replaceWith(node);
    }
    cards.set(event.id, { event, node });
    return node;
  }

  function renderChronology(shown) {
    const box = $("#chronology");
    const want = shown.slice(0, state.limit);
    const wanted = new Set(want.map((e) => e.id));
    for (const [id, kept] of cards) {
      if (!wanted.has(id) || state.events.get(id) !== kept.event) {
        kept.node.remove();
        cards.delete(id);
      }
    }
    let next = box.firstChild;
    for (const event of want) {
      const node = cardNode(event);
      if (node === next) next = node.nextSibling;
      else box.insertBefore(node, next);
    }
    $("#empty").hidden = shown.length > 0;
    const more = shown.length - want.length;
    $("#more").hidden = more <= 0;
    $("#more").textContent = `Show ${Math.min(more, RENDER_STEP)} more (${more} not shown)`;
    const all = state.list.length;
    $("#count").textContent =
      shown.length === all ? `${all} events` : `${shown.length} of ${all} events`;
    const note = $("#window");
    note.hidden = !state.truncated;
    if (state.truncated && all) {
      const older = Math.max(state.total - all, 0);
      note.textContent =
        `showing events from ${state.list[0].occurred.lo} on; ` +
        `${older} older not shown (the page keeps the newest ${MAX_EVENTS})`;
    }
  }

  function renderFilters() {
    const companies = [...new Set([...state.companies.keys(), ...state.seen])].sort((a, b) =>
      companyName(a).localeCompare(companyName(b)),
    );
    const fill = (select, first, values, label) => {
      const signature = values.map((value) => `${value}=${label(value)}`).join("\n");
      if (select.dataset.signature === signature) return;
      select.dataset.signature = signature;
      const current = select.value;
      select.replaceChildren(first, ...values.map((value) => h("option", { value }, label(value))));
      select.value = values.includes(current) ? current : first.value;
    };
    fill($("#filter-company"), h("option", { value: "" }, "All companies"), companies, companyName);
    fill(
      $("#filter-type"),
      h("option", { value: "" }, "All types"),
      Object.keys(TYPES),
      (t) => TYPES[t],
    );
    fill(
      $("#company-select"),
      h("option", { value: "" }, "Pick a company"),
      companies,
      companyName,
    );
    $("#filter-company").value = state.filters.company;
    $("#filter-type").value = state.filters.type;
    $("#company-select").value = state.selected;
  }

  // At most one redraw per frame. The swimlanes draw every loaded event, which costs far more
  // than a card, so a live event redraws them at most once per LANES_INTERVAL; what the user
  // asks for (a filter, the order, a company) redraws them in the next frame.
  const timings = { receive: [], render: [], lanes: [] };
  window.timelineTimings = timings; // the page's own measurements, read by the tests
  const measure = (name, started) => {
    timings[name].push(performance.now() - started);
    if (timings[name].length > 100) timings[name].shift();
  };
  let renderQueued = false;
  let lanesDue = false;
  let lanesTimer = null;
  let lanesDrawn = 0;
  function render(live = false) {
    if (live) {
      if (!lanesTimer) {
        const wait = Math.max(0, lanesDrawn + LANES_INTERVAL - performance.now());
        lanesTimer = setTimeout(() => {
          lanesDue = true;
          render();
        }, wait);
      }
    } else lanesDue = true;
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const started = performance.now();
      renderFilters();
      const shown = filtered();
      renderChronology(shown);
      $("#head").textContent = `position ${Math.max(state.known, state.lastId || 0)}`;
      if (pendingFocus && focusCard(pendingFocus)) pendingFocus = null;
      measure("render", started);
      if (lanesDue) {
        lanesDue = false;
        clearTimeout(lanesTimer);
        lanesTimer = null;
        const begun = performance.now();
        renderLanes(shown);
        lanesDrawn = performance.now();
        measure("lanes", begun);
      }
    });
  }

  // ---- the swimlane chart

  function ticks(start, end) {
    const span = end - start;
    const first = new Date(start * DAY_MS);
    const out = [];
    const months = span > 365 * 12 ? 60 : span > 365 * 3 ? 12 : span > 270 ? 3 : 1;
    let year = first.getUTCFullYear();
    let month = Math.floor(first.getUTCMonth() / months) * months;
    if (months >= 12) {
      year = Math.floor(year / (months / 12)) * (months / 12);
      month = 0;
    }
    for (;;) {
      const day = Date.UTC(year, month, 1) / DAY_MS;
      if (day > end) break;
      if (day >= start) {
        const label =
          months >= 12
            ? `${year}`
            : months === 3
              ? `${year} Q${month / 3 + 1}`
              : `${year}-${pad(month + 1)}`;
        out.push({ day, label });
      }
      month += months;
      year += Math.floor(month / 12);
      month %= 12;
    }
    return out;
  }

  function renderLegend() {
    $("#legend").replaceChildren(
      ...Object.entries(TYPES).map(([type, label]) =>
        h("span", { class: "legend-item", "data-type": type }, h("i", { class: "swatch" }), label),
      ),
      h("span", { class: "legend-item" }, h("i", { class: "swatch rumored" }), "rumored"),
      h(
        "span",
        { class: "legend-item" },
        h("i", { class: "swatch ranged" }),
        "fuzzy date: its range",
      ),
    );
  }

  // The lanes drawn last time, kept while the axis, the width and the filters stay the same:
  // a live event redraws only its company's lane. An axis that still holds every event (with
  // its margin) is kept too, so an event at the newest end does not move every mark.
  const lanes = { key: "", axis: null, drawn: new Map(), dirty: new Set() };
  const laneDirty = (company) => lanes.dirty.add(company);

  function renderLanes(shown) {
    const box = $("#lanes");
    const width = Math.max(box.clientWidth, 640);
    if (!shown.length) {
      lanes.key = "";
      lanes.drawn.clear();
      lanes.svg = null;
      box.replaceChildren(h("p", { class: "empty" }, "Nothing to draw."));
      return;
    }
    const dated = state.allYears ? shown : shown.filter((e) => e.type !== "company.registered");
    const basis = dated.length ? dated : shown;
    let [first, last] = [Infinity, -Infinity];
    for (const e of basis) {
      first = Math.min(first, dayNumber(e.occurred.lo));
      last = Math.max(last, dayNumber(e.occurred.hi));
    }
    let [start, end] = [first, last];
    if (end - start < 60) [start, end] = [start - 30, end + 30];
    const margin = (end - start) * 0.02;
    [start, end] = [start - margin, end + margin];
    const layout = [width, state.allYears, state.filters.company, state.filters.type].join("|");
    const before = lanes.axis;
    if (
      before &&
      before.layout === layout &&
      first >= before.start &&
      last <= before.end &&
      before.end - before.start <= (end - start) * 1.1
    )
      [start, end] = [before.start, before.end];
    lanes.axis = { layout, start, end };
    const key = `${layout}|${start}|${end}`;
    if (key !== lanes.key) {
      lanes.key = key;
      lanes.drawn.clear();
    }

    const labelWidth = 190;
    const axisHeight = 24;
    const row = 9;
    const maxRows = 4;
    const plot = width - labelWidth - 14;
    const x = (day) =>
      labelWidth + ((Math.min(Math.max(day, start), end) - start) / (end - start)) * plot;

    const byCompany = new Map();
    // `shown` is in the chronology's order: oldest first is what packing the rows needs.
    for (const event of state.newestFirst ? [...shown].reverse() : shown) {
      if (!byCompany.has(event.company)) byCompany.set(event.company, []);
      byCompany.get(event.company).push(event);
    }
    const companies = [...byCompany.keys()].sort((a, b) =>
      companyName(a).localeCompare(companyName(b)),
    );
    for (const company of lanes.drawn.keys())
      if (!byCompany.has(company)) lanes.drawn.delete(company);

    // One company's lane, drawn at y = 0 and moved into place with a transform.
    const drawLane = (company, events) => {
      const ends = [];
      const placed = events.map((event) => {
        const lo = dayNumber(event.occurred.lo);
        const hi = dayNumber(event.occurred.hi);
        const left = x(lo);
        const right = Math.max(x(hi), left + 7);
        let lane = ends.findIndex((end) => end + 2 <= left);
        if (lane === -1 && ends.length < maxRows) lane = ends.push(0) - 1;
        if (lane === -1) lane = ends.indexOf(Math.min(...ends));
        ends[lane] = Math.max(ends[lane], right);
        return { event, lo, hi, left, right, lane };
      });
      const height = Math.max(ends.length, 1) * row + 12;
      const group = svg("g", { class: "lane", "data-company": company });
      group.append(
        svg(
          "rect",
          {
            class: "lane-bg",
            x: 0,
            y: 0,
            width,
            height,
            onclick: (click) => {
              const bounds = click.currentTarget.ownerSVGElement.getBoundingClientRect();
              const offset = click.clientX - bounds.left;
              if (offset < labelWidth) return selectCompany(company);
              const day = Math.floor(start + ((offset - labelWidth) / plot) * (end - start));
              selectCompany(company, isoDay(day));
            },
          },
          svg("title", {}, `${companyName(company)}: click to see its state as of that day`),
        ),
        svg(
          "text",
          {
            class: "lane-label",
            x: 12,
            y: height / 2 + 4,
            onclick: () => selectCompany(company),
          },
          companyName(company).length > 26
            ? `${companyName(company).slice(0, 25)}…`
            : companyName(company),
          svg("title", {}, `${companyName(company)} (${company})`),
        ),
      );
      // Thousands of marks: set their attributes directly; the chart handles their clicks.
      const marks = document.createDocumentFragment();
      for (const p of placed) {
        const e = p.event;
        const y = 6 + p.lane * row;
        const ranged = p.hi - p.lo > 1;
        const mark = document.createElementNS(SVG_NS, ranged ? "rect" : "circle");
        const outside = p.hi <= start || p.lo >= end;
        mark.setAttribute("class", `mark${ranged ? " ranged" : ""}${outside ? " outside" : ""}`);
        mark.dataset.id = e.id;
        mark.dataset.type = e.type;
        mark.dataset.confidence = e.confidence;
        if (ranged) {
          mark.setAttribute("x", p.left);
          mark.setAttribute("y", y);
          mark.setAttribute("width", p.right - p.left);
          mark.setAttribute("height", row - 2);
          mark.setAttribute("rx", 3);
        } else {
          mark.setAttribute("cx", (p.left + p.right) / 2);
          mark.setAttribute("cy", y + (row - 2) / 2);
          mark.setAttribute("r", 4);
        }
        marks.append(mark);
      }
      group.append(marks);
      return { group, height, name: companyName(company) };
    };

    const parts = []; // the grid and its labels
    for (const tick of ticks(start, end)) {
      parts.push(
        svg("line", {
          class: "grid",
          x1: x(tick.day),
          x2: x(tick.day),
          y1: axisHeight - 6,
          y2: "100%",
        }),
      );
      parts.push(
        svg("text", { class: "tick", x: x(tick.day) + 3, y: axisHeight - 10 }, tick.label),
      );
    }
    const groups = [];
    let top = axisHeight;
    companies.forEach((company, index) => {
      let drawn = lanes.drawn.get(company);
      if (!drawn || lanes.dirty.has(company) || drawn.name !== companyName(company)) {
        drawn = drawLane(company, byCompany.get(company));
        lanes.drawn.set(company, drawn);
      }
      const { group, height } = drawn;
      group.setAttribute("transform", `translate(0 ${top})`);
      group.classList.toggle("selected", company === state.selected);
      group.firstChild.classList.toggle("odd", index % 2 === 1);
      groups.push(group);
      top += height;
    });
    lanes.dirty.clear();
    const overlay = [];
    let bottom = top + 4;
    if (state.selected) {
      const day = dayNumber(state.asOf || today()) + 1;
      if (day >= start && day <= end) {
        const right = x(day) > labelWidth + plot / 2;
        overlay.push(
          svg("line", {
            class: "as-of-line",
            x1: x(day),
            x2: x(day),
            y1: axisHeight - 4,
            y2: top + 4,
          }),
        );
        overlay.push(
          svg(
            "text",
            {
              class: "as-of-label",
              x: x(day) + (right ? -4 : 4),
              y: top + 16,
              "text-anchor": right ? "end" : "start",
            },
            `as of ${state.asOf || "today"}: the end of that day`,
          ),
        );
        bottom = top + 22;
      }
    }
    // The chart stays in the page: lanes that did not change are not touched.
    if (!lanes.svg || lanes.svg.parentNode !== box) {
      lanes.svg = svg("svg", {
        role: "img",
        "aria-label": "swimlane chart of events by company and date",
        onmouseover: markTip,
        onclick: (click) => {
          const mark = click.target.closest?.(".mark");
          if (mark) focusCard(mark.dataset.id, true);
        },
      });
      lanes.grid = svg("g", { class: "axis" });
      lanes.rows = svg("g", { class: "rows" });
      lanes.overlay = svg("g", { class: "overlay" });
      lanes.svg.append(lanes.grid, lanes.rows, lanes.overlay);
      box.replaceChildren(lanes.svg);
    }
    lanes.svg.setAttribute("width", width);
    lanes.svg.setAttribute("height", bottom);
    lanes.grid.replaceChildren(...parts);
    const keep = new Set(groups);
    for (const child of [...lanes.rows.children]) if (!keep.has(child)) child.remove();
    let next = lanes.rows.firstChild;
    for (const group of groups) {
      if (group === next) next = group.nextSibling;
      else lanes.rows.insertBefore(group, next);
    }
    lanes.overlay.replaceChildren(...overlay);
  }

  // A mark's tooltip is made when the pointer first reaches it: thousands of marks, few hovered.
  function markTip(over) {
    const mark = over.target;
    if (!mark.classList?.contains("mark") || mark.firstChild) return;
    const e = state.events.get(mark.dataset.id);
    if (!e) return;
    const about = describe(e.type, e.data || {});
    const text = [
      `${shownDate(e.occurred)} · ${companyName(e.company)} · ${TYPES[e.type] || e.type}`,
      about.title,
      `${describeDate(e.occurred)} · ${e.confidence}`,
    ].join("\n");
    mark.append(svg("title", {}, text));
  }

  let pendingFocus = null;
  // Scroll to an event's card; one not drawn yet (past "Show more") is drawn first.
  function focusCard(id, draw) {
    const target = document.getElementById(`event-${id}`);
    if (!target) {
      if (!draw) return false;
      const index = filtered().findIndex((e) => e.id === id);
      if (index < 0) return false;
      state.limit = Math.max(state.limit, Math.ceil((index + 1) / RENDER_STEP) * RENDER_STEP);
      pendingFocus = id;
      render();
      return false;
    }
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.remove("focus");
    void target.offsetWidth; // restart the highlight animation
    target.classList.add("focus");
    return true;
  }

  // ---- one company as of a date

  function selectCompany(company, asOf) {
    state.selected = company;
    if (asOf !== undefined) {
      state.asOf = asOf;
      $("#as-of").value = asOf;
    }
    saveHash();
    render();
    loadCompany();
  }

  function setAsOf(text) {
    const resolved = resolveAsOf(text);
    const note = $("#as-of-note");
    if (resolved.error) {
      note.textContent = resolved.error;
      note.classList.add("invalid");
      return;
    }
    note.classList.remove("invalid");
    state.asOf = resolved.day;
    note.textContent = resolved.note ? `${resolved.day}, ${resolved.note}` : "";
    saveHash();
    render();
    loadCompany();
  }

  function stepAsOf(days) {
    const day = isoDay(dayNumber(state.asOf || today()) + days);
    $("#as-of").value = day;
    setAsOf(day);
  }

  async function loadCompany() {
    const view = $("#company-view");
    const seq = ++state.companySeq;
    if (!state.selected) {
      view.replaceChildren(
        h("p", { class: "empty" }, "Pick a company, or click its lane or its name on a card."),
      );
      return;
    }
    const query = new URLSearchParams();
    if (state.asOf) query.set("as_of", state.asOf);
    view.setAttribute("aria-busy", "true");
    try {
      const found = await api(`/v1/companies/${encodeURIComponent(state.selected)}?${query}`);
      if (seq === state.companySeq) view.replaceChildren(...companyView(found));
    } catch (problem) {
      if (seq !== state.companySeq) return;
      view.replaceChildren(
        h(
          "div",
          { class: "problem", role: "alert" },
          h("strong", {}, problem.title),
          " ",
          problem.detail || problem.message,
        ),
      );
      if (problem.status === 401 || problem.status === 403 || problem.status === 0)
        showError(problem);
    } finally {
      if (seq === state.companySeq) view.removeAttribute("aria-busy");
    }
  }

  function stateItem(type, item, possible) {
    const about = describe(type, item);
    return h(
      "li",
      { class: possible ? "item possible" : "item", "data-id": item.id, "data-type": type },
      h(
        "div",
        { class: "card-meta" },
        h(
          "time",
          { class: "date", datetime: item.occurred.lo, title: describeDate(item.occurred) },
          shownDate(item.occurred),
        ),
        possible &&
          h(
            "span",
            {
              class: "possible-badge",
              title: "its date range has begun but not ended by the as-of day",
            },
            "possible",
          ),
        possible && h("span", { class: "type", "data-type": type }, TYPES[type] || type),
        confidenceBadge(item.confidence),
      ),
      h("p", { class: "title" }, about.title),
      about.summary && h("p", { class: "summary" }, about.summary),
      (about.facts || []).filter(Boolean).map((fact) => h("p", { class: "fact" }, fact)),
      possible && h("p", { class: "fact" }, `somewhere in ${describeDate(item.occurred)}`),
    );
  }

  function companyView(found) {
    const nodes = [
      h(
        "div",
        { class: "company-head" },
        h("h3", { class: "company-name" }, found.name),
        h("p", { class: "muted" }, joined([found.company, list(found.aliases)])),
        h(
          "p",
          { class: "known" },
          `As of ${found.as_of} · known at position ${found.known_at.position}` +
            ` · version ${found.version}`,
        ),
      ),
    ];
    const counts = SECTIONS.map(([key, label, , one]) => [n(found[key]), label, one]).filter(
      ([count]) => count,
    );
    nodes.push(
      h(
        "p",
        { class: "chips" },
        counts.map(([count, label, one]) =>
          h("span", { class: "chip" }, `${count} ${count === 1 ? one : label.toLowerCase()}`),
        ),
      ),
    );
    for (const [key, label, type] of SECTIONS) {
      const items = found[key] || [];
      if (!items.length) continue;
      nodes.push(
        h(
          "section",
          { class: "state-section", "data-section": key },
          h("h4", {}, label),
          h(
            "ol",
            { class: "items" },
            items.map((item) => stateItem(type, item, false)),
          ),
        ),
      );
    }
    const possible = found.possible || [];
    if (possible.length) {
      nodes.push(
        h(
          "section",
          { class: "state-section possible-section", "data-section": "possible" },
          h("h4", {}, `Possible by ${found.as_of}`),
          h(
            "p",
            { class: "hint" },
            "Fuzzy dates whose range has begun but not ended: " +
              "these may or may not have happened yet.",
          ),
          h(
            "ol",
            { class: "items" },
            possible.map((item) => stateItem(item.type, item, true)),
          ),
        ),
      );
    }
    if (!counts.length && !possible.length) {
      nodes.push(
        h(
          "p",
          { class: "empty" },
          `Nothing about ${found.name} is known to have happened by ${found.as_of}.`,
        ),
      );
    }
    return nodes;
  }

  // ---- loading and the live feed

  // Every page of /v1/chronology for a query, pinned at one position.
  async function* pages(query) {
    let cursor = null;
    for (;;) {
      const params = new URLSearchParams({ ...query, limit: String(PAGE_SIZE) });
      if (cursor) params.set("cursor", cursor);
      const page = await api(`/v1/chronology?${params}`);
      yield page.events;
      cursor = page.next_cursor;
      if (!cursor) return;
    }
  }

  // The day D (a day number) from which the companies' counts suggest about `wanted` events,
  // taking each company's events as spread evenly from its first to its last.
  function estimateFrom(companies, wanted, first, last) {
    const spans = companies
      .filter((c) => c.events && c.first && c.last)
      .map((c) => [dayNumber(c.first.lo), dayNumber(c.last.hi), c.events]);
    const expected = (day) =>
      spans.reduce((sum, [lo, hi, count]) => {
        if (day <= lo) return sum + count;
        if (day >= hi) return sum;
        return sum + (count * (hi - day)) / (hi - lo);
      }, 0);
    const target = wanted + expected(last);
    let [low, high] = [first, last];
    while (high - low > 1) {
      const mid = Math.floor((low + high) / 2);
      if (expected(mid) >= target) low = mid;
      else high = mid;
    }
    return low;
  }

  // The chronology known at one position S. When the log has more than MAX_EVENTS events, the
  // newest MAX_EVENTS: /v1/chronology pages oldest first, so the page reads from a day D chosen
  // from the companies' counts and dates, and moves D earlier until at least MAX_EVENTS events
  // begin on or after it (or later, when it finds far more than needed).
  async function loadChronology() {
    const found = await api("/v1/companies");
    const known = found.known_at.position;
    const total = found.companies.reduce((sum, c) => sum + (c.events || 0), 0);
    const pinned = { known_at: String(known) };
    const take = (into, events) => {
      for (const event of events) if (!into.has(event.id)) into.set(event.id, event);
    };
    let events = new Map();
    if (total <= MAX_EVENTS) {
      for await (const page of pages(pinned)) take(events, page);
    } else {
      const dated = found.companies.filter((c) => c.events && c.first && c.last);
      const first = Math.min(...dated.map((c) => dayNumber(c.first.lo)));
      const last = Math.max(...dated.map((c) => dayNumber(c.last.hi)));
      const beginsFrom = (day) => {
        let count = 0;
        for (const event of events.values()) if (dayNumber(event.occurred.lo) >= day) count++;
        return count;
      };
      let from = estimateFrom(dated, MAX_EVENTS * 1.1, first, last);
      // Forward from D to the newest; far too many means D is too early: try a later one.
      for (let attempt = 0; ; attempt++) {
        events = new Map();
        let tooMany = false;
        for await (const page of pages({ ...pinned, from: isoDay(from) })) {
          take(events, page);
          if (events.size > MAX_EVENTS * 3 && attempt < 6 && last - from > 62) {
            tooMany = true;
            break;
          }
        }
        if (!tooMany) break;
        from = Math.floor((from + last) / 2);
      }
      // Too few: read the days before D as well, until enough events begin on or after it.
      for (let count = beginsFrom(from); count < MAX_EVENTS && from > first; ) {
        const wanted = (MAX_EVENTS - count) * 1.25 + 100;
        const estimate = estimateFrom(dated, wanted, first, from);
        const earlier = Math.max(first, Math.min(estimate, from - 31));
        for await (const page of pages({ ...pinned, from: isoDay(earlier), to: isoDay(from - 1) }))
          take(events, page);
        from = earlier;
        count = beginsFrom(from);
      }
    }
    const list = [...events.values()].sort(compare);
    const truncated = total > MAX_EVENTS || list.length > MAX_EVENTS;
    const kept = list.slice(Math.max(0, list.length - MAX_EVENTS));
    return { list: kept, known, total: Math.max(total, list.length), truncated, found };
  }

  async function loadCompanies(known) {
    const query = known ? `?known_at=${known}` : "";
    const found = await api(`/v1/companies${query}`);
    useCompanies(found);
  }

  function useCompanies(found) {
    state.companies = new Map(found.companies.map((c) => [c.company, c]));
    state.total = found.companies.reduce((sum, c) => sum + (c.events || 0), 0);
  }

  async function loadAll() {
    clearTimeout(state.retryTimer);
    const generation = ++state.generation;
    if (state.source) state.source.close();
    state.source = null;
    setStatus("connecting");
    try {
      const chronology = await loadChronology();
      if (generation !== state.generation) return;
      useCompanies(chronology.found);
      state.total = chronology.total;
      state.list = chronology.list;
      state.events = new Map(chronology.list.map((e) => [e.id, e]));
      state.seen = new Set(chronology.list.map((e) => e.company));
      state.known = chronology.known;
      state.truncated = chronology.truncated;
      state.lastId = null;
      state.anchor = null;
      state.limit = RENDER_STEP;
      lanes.drawn.clear();
      hideError();
      if (!state.selected && state.companies.size) {
        state.selected = [...state.companies.values()].sort(
          (a, b) => b.events - a.events,
        )[0].company;
      }
      render();
      loadCompany();
      connect(chronology.known);
      anchorAt(chronology.known, generation);
    } catch (problem) {
      if (generation !== state.generation) return;
      showError(problem);
      setStatus("offline");
      if (problem.status !== 401 && problem.status !== 403) retryLater(loadAll);
    }
  }

  // The hash of the event at a position: what a reconnect checks the log against.
  async function hashAt(position) {
    const found = await api(`/v1/events?after=${position - 1}&limit=1`);
    const event = found.events[0];
    return event && event.position === position ? event.hash : null;
  }

  async function anchorAt(position, generation) {
    if (position < 1) return;
    try {
      const hash = await hashAt(position);
      if (generation === state.generation && !state.anchor) state.anchor = { position, hash };
    } catch {
      // Only a reconnect needs it; without it, a reconnect checks the log's length alone.
    }
  }

  // Is the server's log still the one this page has read? (Another database may answer now.)
  async function sameLog() {
    const anchor = state.anchor;
    if (!anchor) return true;
    return (await hashAt(anchor.position)) === anchor.hash;
  }

  function retryLater(action) {
    clearTimeout(state.retryTimer);
    const delay = state.retryMs;
    state.retryMs = Math.min(state.retryMs * 2, 15000);
    setStatus("offline", `offline, retrying in ${Math.round(delay / 1000)} s`);
    state.retryTimer = setTimeout(action, delay);
  }

  function setStatus(name, text) {
    const status = $("#status");
    status.dataset.state = name;
    status.textContent =
      text ||
      { connecting: "connecting", live: "live", reconnecting: "reconnecting", offline: "offline" }[
        name
      ];
  }

  function connect(after) {
    if (state.source) state.source.close();
    const generation = state.generation;
    const query = new URLSearchParams({ after: String(after) });
    const secret = token();
    if (secret) query.set("access_token", secret);
    const source = new EventSource(`/v1/stream?${query}`);
    state.source = source;
    let dropped = false;
    source.onopen = () => {
      state.retryMs = 1000;
      setStatus("live");
      if (!dropped) return;
      dropped = false;
      // The browser reconnected by itself with Last-Event-ID. Before anything it now sends is
      // applied, check that the log at the last event seen is still the same; else start over.
      enqueue(async () => {
        if (generation !== state.generation) return;
        let same = true;
        try {
          same = await sameLog();
        } catch {
          return; // the server went away again: the next reconnect checks again
        }
        if (!same && generation === state.generation) loadAll();
      });
    };
    // On a dropped connection the browser reconnects by itself, sending Last-Event-ID; only
    // when it gives up (the server answered with an error) does the page step in.
    source.onerror = () => {
      if (source !== state.source) return;
      dropped = true;
      if (source.readyState === EventSource.CLOSED) retryLater(resume);
      else setStatus("reconnecting");
    };
    const listener = (message) => enqueue(() => receive(message, generation));
    for (const type of [...Object.keys(TYPES), ...AMENDMENTS, "checkpoint"]) {
      source.addEventListener(type, listener);
    }
  }

  async function resume() {
    const from = state.lastId ?? state.known;
    const generation = state.generation;
    try {
      const health = await api("/healthz");
      if (generation !== state.generation) return;
      if (health.head < from || !(await sameLog())) return loadAll(); // another log: start over
      await api("/v1/digest"); // surfaces a missing or refused token
      if (generation === state.generation) connect(from);
    } catch (problem) {
      showError(problem);
      if (problem.status !== 401 && problem.status !== 403) retryLater(resume);
    }
  }

  // Messages are handled one at a time, in the order they came: an amendment waits for its
  // target's read before the next message is looked at.
  let queue = Promise.resolve();
  function enqueue(task) {
    queue = queue.then(task).catch((problem) => showError(problem));
  }

  let companiesStale = false;
  let companyStale = false;
  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      if (companiesStale) {
        companiesStale = false;
        const generation = state.generation;
        // In the queue, at the position this page has reached: the counts match the list.
        enqueue(async () => {
          if (generation !== state.generation) return;
          try {
            await loadCompanies(Math.max(state.known, state.lastId || 0));
          } catch (problem) {
            showError(problem);
          }
          render(true);
        });
      }
      if (companyStale) {
        companyStale = false;
        loadCompany();
      }
    }, 120);
  }

  async function receive(message, generation) {
    if (generation !== state.generation) return; // from a stream the page has left
    const started = performance.now();
    state.lastId = Number(message.lastEventId);
    if (message.type === "checkpoint") {
      render(true);
      return;
    }
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.hash) state.anchor = { position: event.position, hash: event.hash };
    if (event.company === state.selected) companyStale = true;
    if (!state.companies.has(event.company) || event.type === "company.registered")
      companiesStale = true;
    if (AMENDMENTS.includes(event.type)) {
      measure("receive", started);
      await amend(event, generation);
      companiesStale = true;
    } else if (!state.events.has(event.id)) {
      state.total += 1;
      const company = state.companies.get(event.company);
      if (company) company.events += 1;
      if (insertEvent(event)) markFresh(event);
      measure("receive", started);
    }
    refreshSoon();
    render(true);
  }

  // An amendment changes its target: read the target's effective form again.
  async function amend(amendment, generation) {
    const target = amendment.data.target;
    try {
      const detail = await api(`/v1/events/${encodeURIComponent(target)}`);
      if (generation !== state.generation) return;
      removeEvent(target);
      if (detail.effective) insertEvent(detail.effective);
      const verb = amendment.type.split(".")[1];
      markFresh(detail.effective || detail.event, verb);
    } catch (problem) {
      showError(problem);
    }
  }

  function markFresh(event, verb) {
    state.fresh.add(event.id);
    setTimeout(() => {
      state.fresh.delete(event.id);
      document.getElementById(`event-${event.id}`)?.classList.remove("fresh");
    }, 6000);
    const about = describe(event.type, event.data || {});
    $("#ticker").replaceChildren(
      h("span", { class: "ticker-label" }, "Just in"),
      ` ${companyName(event.company)} · ${verb ? `${verb}: ` : ""}${about.title}`,
    );
  }

  // ---- the address keeps the view

  function saveHash() {
    const query = new URLSearchParams();
    if (state.selected) query.set("company", state.selected);
    if (state.asOf) query.set("as_of", state.asOf);
    if (state.filters.company) query.set("filter_company", state.filters.company);
    if (state.filters.type) query.set("filter_type", state.filters.type);
    history.replaceState(null, "", query.toString() ? `#${query}` : location.pathname);
  }

  function loadHash() {
    const query = new URLSearchParams(location.hash.slice(1));
    state.selected = query.get("company") || "";
    state.filters.company = query.get("filter_company") || "";
    state.filters.type = query.get("filter_type") || "";
    const asOf = resolveAsOf(query.get("as_of") || "");
    state.asOf = asOf.day || "";
    $("#as-of").value = state.asOf;
  }

  // ---- wiring

  function start() {
    loadHash();
    renderLegend();
    $("#filter-company").addEventListener("change", (e) => {
      state.filters.company = e.target.value;
      state.limit = RENDER_STEP;
      saveHash();
      render();
    });
    $("#filter-type").addEventListener("change", (e) => {
      state.filters.type = e.target.value;
      state.limit = RENDER_STEP;
      saveHash();
      render();
    });
    $("#order").addEventListener("click", (e) => {
      state.newestFirst = !state.newestFirst;
      state.limit = RENDER_STEP;
      e.target.textContent = state.newestFirst ? "Newest first" : "Oldest first";
      render();
    });
    $("#all-years").addEventListener("change", (e) => {
      state.allYears = e.target.checked;
      render();
    });
    $("#company-select").addEventListener("change", (e) => selectCompany(e.target.value));
    $("#as-of-form").addEventListener("submit", (e) => {
      e.preventDefault();
      setAsOf($("#as-of").value);
    });
    $("#as-of").addEventListener("change", (e) => setAsOf(e.target.value));
    $("#as-of-back").addEventListener("click", () => stepAsOf(-1));
    $("#as-of-next").addEventListener("click", () => stepAsOf(1));
    $("#as-of-today").addEventListener("click", () => {
      $("#as-of").value = "";
      setAsOf("");
    });
    $("#token-button").addEventListener("click", () => showTokenForm($("#token-form").hidden));
    $("#token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      setToken($("#token-input").value.trim());
      $("#token-input").value = "";
      showTokenForm(false);
      state.retryMs = 1000;
      loadAll();
    });
    $("#token-forget").addEventListener("click", () => {
      setToken("");
      showTokenForm(false);
      loadAll();
    });
    $("#error-close").addEventListener("click", hideError);
    $("#more").addEventListener("click", () => {
      state.limit += RENDER_STEP;
      render();
    });
    let width = 0;
    new ResizeObserver(([entry]) => {
      if (Math.round(entry.contentRect.width) === width) return;
      width = Math.round(entry.contentRect.width);
      render();
    }).observe($("#lanes"));
    showTokenForm(false);
    loadAll();
  }

  start();
})();
