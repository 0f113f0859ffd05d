// Loading and the live feed: the first read of the chronology, then EventSource on
// /v1/stream from the position it was read at, each message applied in order, and the checks
// that a reconnect still talks to the same log.

import { insertEvent, removeEvent, render } from "./chronology.js";
import { loadChanges } from "./changes.js";
import { loadCompany } from "./company.js";
import {
  api,
  hashAt,
  hideError,
  loadChronology,
  loadCompanies,
  showError,
  token,
  useCompanies,
} from "./data.js";
import { $, h } from "./dom.js";
import { TYPES, describe } from "./format.js";
import { RENDER_STEP, companyName, measure, saveHash, state } from "./state.js";
import { forgetLanes } from "./swimlanes.js";

const AMENDMENTS = ["event.corrected", "event.retracted", "event.reinstated"];

export async function loadAll() {
  clearTimeout(state.retryTimer);
  const generation = ++state.generation;
  if (state.source) state.source.close();
  state.source = null;
  setStatus("connecting");
  try {
    const chronology = await loadChronology(state.knownAt);
    if (generation !== state.generation) return;
    // A view known at a past point still follows the log: the feed starts at the head, and
    // what it brings is counted, not applied.
    let streamFrom = chronology.known;
    if (state.knownAt) {
      const digest = await api("/v1/digest");
      if (generation !== state.generation) return;
      streamFrom = Math.max(digest.position, chronology.known);
    }
    useCompanies(chronology.found);
    state.total = chronology.total;
    state.list = chronology.list;
    state.events = new Map(chronology.list.map((e) => [e.id, e]));
    state.seen = new Set(chronology.list.map((e) => e.company));
    state.known = chronology.known;
    state.pinned = state.knownAt ? chronology.found.known_at : null;
    state.streamFrom = streamFrom;
    state.newer = streamFrom - chronology.known;
    state.truncated = chronology.truncated;
    state.lastId = null;
    state.anchor = null;
    state.limit = RENDER_STEP;
    forgetLanes();
    hideError();
    if (state.hashProblem) showError(state.hashProblem); // still not fixed
    if (!state.selected && state.companies.size) {
      state.selected = [...state.companies.values()].sort(
        (a, b) => b.events - a.events,
      )[0].company;
    }
    renderKnown();
    render();
    loadCompany();
    loadChanges();
    connect(streamFrom);
    anchorAt(streamFrom, generation);
  } catch (problem) {
    if (generation !== state.generation) return;
    showError(problem);
    setStatus("offline");
    // A point past the head or a malformed one will not mend by asking again.
    if (problem.status === 0 || problem.status === 429 || problem.status >= 500)
      retryLater(loadAll);
  }
}

// Time travel: the whole page (swimlanes, chronology, company view) as the log was at a point,
// a position or a time; "" is now.
export function setKnownAt(text) {
  state.knownAt = text.trim();
  $("#known-at").value = state.knownAt;
  state.pinned = null;
  saveHash();
  loadAll();
}

// The header says which log the page shows: "known at S", and how much has come since.
export function renderKnown() {
  const note = $("#known-note");
  const banner = $("#pinned");
  $("#known-now").hidden = !state.knownAt;
  document.body.classList.toggle("in-the-past", Boolean(state.pinned));
  if (!state.pinned) {
    note.hidden = true;
    banner.hidden = true;
    return;
  }
  const { position, recorded } = state.pinned;
  note.hidden = !state.newer;
  note.textContent = `+${state.newer} newer, not shown`;
  note.title = `entries appended after position ${position}: the view stays as known then`;
  banner.hidden = false;
  $("#pinned-text").textContent =
    `Known at position ${position}` +
    (recorded ? ` (recorded ${recorded})` : "") +
    ": everything below is as the log held it then. " +
    (state.newer
      ? `${state.newer} newer ${state.newer === 1 ? "entry" : "entries"} in the log, not shown.`
      : "Nothing newer in the log.");
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
  const from = state.lastId ?? state.streamFrom;
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
    if (state.pinned) return;
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
  if (state.pinned) {
    // A view known at a past point: live entries are counted, not applied to it.
    state.newer = Math.max(state.streamFrom, state.lastId) - state.known;
    renderKnown();
    return;
  }
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
  const said = `${companyName(event.company)} · ${verb ? `${verb}: ` : ""}${about.title}`;
  $("#ticker").replaceChildren(h("span", { class: "ticker-label" }, "Just in"), ` ${said}`);
  $("#ticker").title = said; // the line is cut to the header's width: said whole on hover
}
