// The page's state, one object every module reads and changes: the loaded events, the companies,
// the view (filters, order, company, as-of) and the live feed's bookkeeping. The address keeps
// the view, so a view can be bookmarked or shared.

import { $ } from "./dom.js";
import { dayNumber, isoDay, resolveAsOf } from "./format.js";

export const MAX_EVENTS = 20000; // past this, the page keeps the newest events
export const RENDER_STEP = 500; // cards drawn at a time; "Show more" adds as many again

export const state = {
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
  view: null, // the swimlanes' window, {start, end} in day numbers (end exclusive), or all
  selected: "",
  asOf: "", // YYYY-MM-DD, or "" for today
  badAsOf: "", // an as-of that is not a date, as written (the company view waits for a good one)
  knownAt: "", // the "known at" point as written (a position or a time), or "" for now
  pinned: null, // {position, recorded} the page's view is known at, when knownAt is set
  streamFrom: 0, // where the live feed started: the chronology's position, or the head
  newer: 0, // entries in the log after a pinned view's position, not applied to it
  since: "", // S1 of "what changed since", as written ("" = the known-at point)
  hashProblem: null, // what the address holds that the page cannot use, shown until fixed
  fresh: new Set(),
  source: null,
  retryMs: 1000,
  retryTimer: null,
  companySeq: 0,
};

export const companyName = (slug) => state.companies.get(slug)?.name || slug;

const timings = { receive: [], render: [], lanes: [] };
window.timelineTimings = timings; // the page's own measurements, to read from outside
export const measure = (name, started) => {
  timings[name].push(performance.now() - started);
  if (timings[name].length > 100) timings[name].shift();
};

// ---- the address keeps the view

export function saveHash() {
  const query = new URLSearchParams();
  if (state.selected) query.set("company", state.selected);
  if (state.badAsOf || state.asOf) query.set("as_of", state.badAsOf || state.asOf);
  if (state.filters.company) query.set("filter_company", state.filters.company);
  if (state.filters.type) query.set("filter_type", state.filters.type);
  if (state.knownAt) query.set("known_at", state.knownAt);
  if (state.since) query.set("since", state.since);
  if (state.view) {
    query.set("from", isoDay(Math.floor(state.view.start)));
    query.set("to", isoDay(Math.ceil(state.view.end) - 1));
  }
  history.replaceState(null, "", query.toString() ? `#${query}` : location.pathname);
}

// Read the view from the address: on load, and whenever the address's hash is edited. A value
// the page cannot use is kept as written and said (state.hashProblem), never silently
// replaced: an as-of that is not a date stays in the as-of field, marked.
export function loadHash() {
  const query = new URLSearchParams(location.hash.slice(1));
  const errors = [];
  state.selected = query.get("company") || "";
  state.filters.company = query.get("filter_company") || "";
  state.filters.type = query.get("filter_type") || "";
  const written = query.get("as_of") || "";
  const asOf = resolveAsOf(written);
  state.asOf = asOf.day || "";
  state.badAsOf = asOf.error ? written : "";
  if (asOf.error) errors.push({ loc: ["as_of"], msg: asOf.error });
  $("#as-of").value = state.badAsOf || state.asOf;
  const note = $("#as-of-note");
  note.textContent = asOf.error || (asOf.note ? `${asOf.day}, ${asOf.note}` : "");
  note.classList.toggle("invalid", Boolean(asOf.error));
  state.knownAt = (query.get("known_at") || "").trim();
  state.since = (query.get("since") || "").trim();
  $("#known-at").value = state.knownAt;
  $("#since").value = state.since;
  const [from, to] = [query.get("from"), query.get("to")];
  state.view = null;
  if (from || to) {
    const day = (text) => (/^\d{4}-\d{2}-\d{2}$/.test(text || "") ? resolveAsOf(text).day : null);
    const [start, end] = [day(from), day(to)];
    if (start && end && start <= end)
      state.view = { start: dayNumber(start), end: dayNumber(end) + 1 };
    else errors.push({ loc: ["from", "to"], msg: "the swimlanes' window: two days, from ≤ to" });
  }
  state.hashProblem = errors.length
    ? {
        title: "The address holds a value the page cannot use",
        detail: `#${query}: fix it in the address, or in the field it names.`,
        errors,
      }
    : null;
}
