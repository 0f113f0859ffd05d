// The API as the page reads it: the read token (kept in localStorage), every request, the
// problems the server answers with, and the chronology, the companies and the hashes the live
// feed checks the log against. Nothing here draws the chronology or the chart.

import { $, h } from "./dom.js";
import { dayNumber, isoDay } from "./format.js";
import { MAX_EVENTS, state } from "./state.js";

const TOKEN_KEY = "timeline.token";
const PAGE_SIZE = 1000;

// ---- the token

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(value) {
  try {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    showError({ title: "Cannot keep the token", detail: "this browser refuses localStorage" });
  }
}

export function showTokenForm(open) {
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

export async function api(path) {
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

export function showError(problem) {
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

export function hideError() {
  $("#error").hidden = true;
}

// ---- the API's order

// /v1/chronology's order, (lo, hi, position) ascending: the page keeps its events in it too.
export function compare(a, b) {
  const [al, bl] = [a.occurred.lo, b.occurred.lo];
  if (al !== bl) return al < bl ? -1 : 1;
  // hi may be 10000-01-01 (a range to the calendar's last day): compared as a day, not text.
  const [ah, bh] = [a.occurred.hi, b.occurred.hi];
  if (ah !== bh) return dayNumber(ah) - dayNumber(bh);
  return a.position - b.position;
}

// ---- loading

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

// The chronology known at one position S: the head, or the point knownAt names. When the log
// has more than MAX_EVENTS events, the newest MAX_EVENTS: /v1/chronology pages oldest first, so
// the page reads from a day D chosen from the companies' counts and dates, and moves D earlier
// until at least MAX_EVENTS events begin on or after it (or later, when it finds far more).
export async function loadChronology(knownAt = "") {
  const at = knownAt ? `?${new URLSearchParams({ known_at: knownAt })}` : "";
  const found = await api(`/v1/companies${at}`);
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

export async function loadCompanies(known) {
  const query = known ? `?known_at=${known}` : "";
  const found = await api(`/v1/companies${query}`);
  useCompanies(found);
}

export function useCompanies(found) {
  state.companies = new Map(found.companies.map((c) => [c.company, c]));
  state.total = found.companies.reduce((sum, c) => sum + (c.events || 0), 0);
}

// The hash of the event at a position: what a reconnect checks the log against.
export async function hashAt(position) {
  const found = await api(`/v1/events?after=${position - 1}&limit=1`);
  const event = found.events[0];
  return event && event.position === position ? event.hash : null;
}
