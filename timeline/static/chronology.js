// The chronology: the loaded events in the API's order, the cards drawn of them, the filters,
// and the redraw that keeps the cards and the swimlanes up to date.
//
// state.list holds the loaded events in the API's order, (lo, hi, position) ascending; an
// insertion or removal finds its place by binary search. Only the first RENDER_STEP cards of
// the current order are in the page ("Show more" adds as many again), and the cards are kept
// by id, so a live event adds, replaces or removes one card instead of drawing them all.

import { compare } from "./data.js";
import { $, h } from "./dom.js";
import {
  TYPES,
  confidenceBadge,
  describe,
  describeDate,
  shownDate,
  sourceBlock,
} from "./format.js";
import { MAX_EVENTS, RENDER_STEP, companyName, measure, state } from "./state.js";
import { laneDirty, renderLanes } from "./swimlanes.js";

const LANES_INTERVAL = 1000; // ms: live events redraw the swimlanes at most this often

// A company's name on a card selects it. The company view imports this module (it redraws the
// page), so main.js hands selectCompany in rather than this module importing it back in a circle.
const actions = { selectCompany: null };
export const wireCards = (handlers) => Object.assign(actions, handlers);

// ---- the loaded events

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
export function insertEvent(event) {
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

export function removeEvent(id) {
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

// ---- the cards

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
        {
          class: "company-link",
          type: "button",
          onclick: () => actions.selectCompany(event.company),
        },
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
    (shown.length === all ? `${all} events` : `${shown.length} of ${all} events`) +
    (state.pinned ? ` known at ${state.known}` : "");
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
  // A select shows a long name cut: its tooltip says it whole.
  for (const select of ["#filter-company", "#filter-type", "#company-select"].map($))
    select.title = select.selectedOptions[0]?.textContent || "";
}

// ---- redrawing

// At most one redraw per frame. The swimlanes draw every loaded event, which costs far more
// than a card, so a live event redraws them at most once per LANES_INTERVAL; what the user
// asks for (a filter, the order, a company) redraws them in the next frame.
let renderQueued = false;
let lanesDue = false;
let lanesTimer = null;
let lanesDrawn = 0;
export function render(live = false) {
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
    $("#head").textContent = state.pinned
      ? `known at ${state.known}`
      : `position ${Math.max(state.known, state.lastId || 0)}`;
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

let pendingFocus = null;
// Scroll to an event's card; one not drawn yet (past "Show more") is drawn first.
export function focusCard(id, draw) {
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
