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
  const MAX_EVENTS = 20000;
  const DAY_MS = 86400000;

  const state = {
    events: new Map(), // id → the event in effective form, as the chronology gives it
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

  function ordered() {
    const events = [...state.events.values()].sort(
      (a, b) =>
        a.occurred.lo.localeCompare(b.occurred.lo) ||
        a.occurred.hi.localeCompare(b.occurred.hi) ||
        a.position - b.position,
    );
    return state.newestFirst ? events.reverse() : events;
  }

  const matches = (event) =>
    (!state.filters.company || event.company === state.filters.company) &&
    (!state.filters.type || event.type === state.filters.type);

  function renderChronology() {
    const all = ordered();
    const shown = all.filter(matches);
    const open = new Set(
      [...document.querySelectorAll("#chronology details[open]")].map(
        (d) => d.closest(".card").dataset.id,
      ),
    );
    $("#chronology").replaceChildren(...shown.map(card));
    for (const id of open)
      document.querySelector(`#event-${CSS.escape(id)} details`)?.setAttribute("open", "");
    $("#empty").hidden = shown.length > 0;
    const count =
      shown.length === all.length
        ? `${all.length} events`
        : `${shown.length} of ${all.length} events`;
    $("#count").textContent = state.truncated ? `${count} (the first ${MAX_EVENTS} only)` : count;
    return shown;
  }

  function renderFilters() {
    const companies = [
      ...new Set([...state.companies.keys(), ...[...state.events.values()].map((e) => e.company)]),
    ].sort((a, b) => companyName(a).localeCompare(companyName(b)));
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

  let renderQueued = false;
  function render() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderFilters();
      const shown = renderChronology();
      renderLanes(shown);
      $("#head").textContent = `position ${Math.max(state.known, state.lastId || 0)}`;
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

  function renderLanes(shown) {
    const box = $("#lanes");
    const width = Math.max(box.clientWidth, 640);
    if (!shown.length) {
      box.replaceChildren(h("p", { class: "empty" }, "Nothing to draw."));
      return;
    }
    const dated = state.allYears ? shown : shown.filter((e) => e.type !== "company.registered");
    const basis = dated.length ? dated : shown;
    let start = Math.min(...basis.map((e) => dayNumber(e.occurred.lo)));
    let end = Math.max(...basis.map((e) => dayNumber(e.occurred.hi)));
    if (end - start < 60) [start, end] = [start - 30, end + 30];
    const margin = (end - start) * 0.02;
    [start, end] = [start - margin, end + margin];

    const labelWidth = 190;
    const axisHeight = 24;
    const row = 9;
    const maxRows = 4;
    const plot = width - labelWidth - 14;
    const x = (day) =>
      labelWidth + ((Math.min(Math.max(day, start), end) - start) / (end - start)) * plot;

    const byCompany = new Map();
    for (const event of [...shown].sort(
      (a, b) => a.occurred.lo.localeCompare(b.occurred.lo) || a.position - b.position,
    )) {
      if (!byCompany.has(event.company)) byCompany.set(event.company, []);
      byCompany.get(event.company).push(event);
    }
    const companies = [...byCompany.keys()].sort((a, b) =>
      companyName(a).localeCompare(companyName(b)),
    );

    const parts = [];
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
    let top = axisHeight;
    companies.forEach((company, index) => {
      const events = byCompany.get(company);
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
      const selected = company === state.selected;
      const lane = svg("g", {
        class: selected ? "lane selected" : "lane",
        "data-company": company,
      });
      lane.append(
        svg(
          "rect",
          {
            class: index % 2 ? "lane-bg odd" : "lane-bg",
            x: 0,
            y: top,
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
            y: top + height / 2 + 4,
            onclick: () => selectCompany(company),
          },
          companyName(company).length > 26
            ? `${companyName(company).slice(0, 25)}…`
            : companyName(company),
          svg("title", {}, `${companyName(company)} (${company})`),
        ),
      );
      for (const p of placed) {
        const e = p.event;
        const about = describe(e.type, e.data || {});
        const y = top + 6 + p.lane * row;
        const tip = svg(
          "title",
          {},
          [
            `${shownDate(e.occurred)} · ${companyName(e.company)} · ${TYPES[e.type] || e.type}`,
            about.title,
            `${describeDate(e.occurred)} · ${e.confidence}`,
          ].join("\n"),
        );
        const common = {
          class: joined(
            ["mark", p.hi - p.lo > 1 && "ranged", (p.hi <= start || p.lo >= end) && "outside"],
            " ",
          ),
          "data-id": e.id,
          "data-type": e.type,
          "data-confidence": e.confidence,
          onclick: () => focusCard(e.id),
        };
        lane.append(
          p.hi - p.lo > 1
            ? svg(
                "rect",
                { ...common, x: p.left, y, width: p.right - p.left, height: row - 2, rx: 3 },
                tip,
              )
            : svg(
                "circle",
                { ...common, cx: (p.left + p.right) / 2, cy: y + (row - 2) / 2, r: 4 },
                tip,
              ),
        );
      }
      parts.push(lane);
      top += height;
    });
    let bottom = top + 4;
    if (state.selected) {
      const day = dayNumber(state.asOf || today()) + 1;
      if (day >= start && day <= end) {
        const right = x(day) > labelWidth + plot / 2;
        parts.push(
          svg("line", {
            class: "as-of-line",
            x1: x(day),
            x2: x(day),
            y1: axisHeight - 4,
            y2: top + 4,
          }),
        );
        parts.push(
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
    box.replaceChildren(
      svg(
        "svg",
        {
          width,
          height: bottom,
          role: "img",
          "aria-label": "swimlane chart of events by company and date",
        },
        parts,
      ),
    );
  }

  function focusCard(id) {
    const target = document.getElementById(`event-${id}`);
    if (!target) return;
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.remove("focus");
    void target.offsetWidth; // restart the highlight animation
    target.classList.add("focus");
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

  async function loadChronology() {
    const events = new Map();
    let cursor = null;
    let known = 0;
    let truncated = false;
    for (;;) {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (cursor) query.set("cursor", cursor);
      const page = await api(`/v1/chronology?${query}`);
      known = page.known_at.position;
      for (const event of page.events) events.set(event.id, event);
      cursor = page.next_cursor;
      if (!cursor) break;
      if (events.size >= MAX_EVENTS) {
        truncated = true;
        break;
      }
    }
    return { events, known, truncated };
  }

  async function loadCompanies() {
    const found = await api("/v1/companies");
    state.companies = new Map(found.companies.map((c) => [c.company, c]));
  }

  async function loadAll() {
    clearTimeout(state.retryTimer);
    setStatus("connecting");
    try {
      const [, chronology] = await Promise.all([loadCompanies(), loadChronology()]);
      state.events = chronology.events;
      state.known = chronology.known;
      state.truncated = chronology.truncated;
      state.lastId = null;
      hideError();
      if (!state.selected && state.companies.size) {
        state.selected = [...state.companies.values()].sort(
          (a, b) => b.events - a.events,
        )[0].company;
      }
      render();
      loadCompany();
      connect(chronology.known);
    } catch (problem) {
      showError(problem);
      setStatus("offline");
      if (problem.status !== 401 && problem.status !== 403) retryLater(loadAll);
    }
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
    const query = new URLSearchParams({ after: String(after) });
    const secret = token();
    if (secret) query.set("access_token", secret);
    const source = new EventSource(`/v1/stream?${query}`);
    state.source = source;
    source.onopen = () => {
      state.retryMs = 1000;
      setStatus("live");
    };
    // On a dropped connection the browser reconnects by itself, sending Last-Event-ID; only
    // when it gives up (the server answered with an error) does the page step in.
    source.onerror = () => {
      if (source !== state.source) return;
      if (source.readyState === EventSource.CLOSED) retryLater(resume);
      else setStatus("reconnecting");
    };
    for (const type of [...Object.keys(TYPES), ...AMENDMENTS, "checkpoint"]) {
      source.addEventListener(type, receive);
    }
  }

  async function resume() {
    const from = state.lastId ?? state.known;
    try {
      const health = await api("/healthz");
      if (health.head < from) return loadAll(); // another log: start over
      await api("/v1/digest"); // surfaces a missing or refused token
      connect(from);
    } catch (problem) {
      showError(problem);
      if (problem.status !== 401 && problem.status !== 403) retryLater(resume);
    }
  }

  let companiesStale = false;
  let companyStale = false;
  let refreshTimer = null;
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      if (companiesStale) {
        companiesStale = false;
        try {
          await loadCompanies();
        } catch (problem) {
          showError(problem);
        }
        render();
      }
      if (companyStale) {
        companyStale = false;
        loadCompany();
      }
    }, 120);
  }

  async function receive(message) {
    state.lastId = Number(message.lastEventId);
    if (message.type === "checkpoint") {
      render();
      return;
    }
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (event.company === state.selected) companyStale = true;
    if (!state.companies.has(event.company) || event.type === "company.registered")
      companiesStale = true;
    if (AMENDMENTS.includes(event.type)) {
      await amend(event);
      companiesStale = true;
    } else if (!state.events.has(event.id)) {
      state.events.set(event.id, event);
      markFresh(event);
    }
    refreshSoon();
    render();
  }

  // An amendment changes its target: read the target's effective form again.
  async function amend(amendment) {
    const target = amendment.data.target;
    try {
      const detail = await api(`/v1/events/${encodeURIComponent(target)}`);
      if (detail.effective) state.events.set(target, detail.effective);
      else state.events.delete(target);
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
      saveHash();
      render();
    });
    $("#filter-type").addEventListener("change", (e) => {
      state.filters.type = e.target.value;
      saveHash();
      render();
    });
    $("#order").addEventListener("click", (e) => {
      state.newestFirst = !state.newestFirst;
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
