// One company as of a date: GET /v1/companies/{company}?as_of=…, its lists, and apart the
// events whose fuzzy range has begun but not ended by that day (possible).

import { loadCompanyChanges } from "./changes.js";
import { render } from "./chronology.js";
import { api, hideError, showError } from "./data.js";
import { $, h } from "./dom.js";
import {
  SECTIONS,
  TYPES,
  confidenceBadge,
  dayNumber,
  describe,
  describeDate,
  isoDay,
  joined,
  list,
  n,
  resolveAsOf,
  shownDate,
  today,
} from "./format.js";
import { saveHash, state } from "./state.js";

export function selectCompany(company, asOf) {
  state.selected = company;
  if (asOf !== undefined) {
    state.asOf = asOf;
    $("#as-of").value = asOf;
  }
  saveHash();
  render();
  loadCompany();
  loadCompanyChanges();
}

export function setAsOf(text) {
  const resolved = resolveAsOf(text);
  const note = $("#as-of-note");
  if (resolved.error) {
    note.textContent = resolved.error;
    note.classList.add("invalid");
    return;
  }
  note.classList.remove("invalid");
  state.asOf = resolved.day;
  state.badAsOf = "";
  if (state.hashProblem) {
    state.hashProblem = null; // the address's bad as-of, now replaced by one the user gave
    hideError();
  }
  note.textContent = resolved.note ? `${resolved.day}, ${resolved.note}` : "";
  saveHash();
  render();
  loadCompany();
  loadCompanyChanges();
}

export function stepAsOf(days) {
  const day = isoDay(dayNumber(state.asOf || today()) + days);
  $("#as-of").value = day;
  setAsOf(day);
}

export async function loadCompany() {
  const view = $("#company-view");
  const seq = ++state.companySeq;
  if (!state.selected) {
    view.replaceChildren(
      h("p", { class: "empty" }, "Pick a company, or click its lane or its name on a card."),
    );
    return;
  }
  if (state.badAsOf) {
    view.replaceChildren(
      h(
        "div",
        { class: "problem", role: "alert" },
        h("strong", {}, "Not a date"),
        ` “${state.badAsOf}” is not a day the page can ask about: give one in As of.`,
      ),
    );
    return;
  }
  const query = new URLSearchParams();
  if (state.asOf) query.set("as_of", state.asOf);
  const knownAt = state.pinned ? String(state.pinned.position) : state.knownAt;
  if (knownAt) query.set("known_at", knownAt);
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

// An executive: who, which role, since when (the appointment's date as written), and, while a
// departure is only possible as of the day, "leaving?" with the departure's date.
function executiveItem(item) {
  const leaving = item.departure;
  return h(
    "li",
    {
      class: leaving ? "item executive leaving" : "item executive",
      "data-id": item.id,
      "data-type": "executive.appointed",
      "data-confidence": item.confidence,
    },
    h(
      "div",
      { class: "card-meta" },
      h(
        "span",
        { class: "since" },
        "since ",
        h(
          "time",
          { class: "date", datetime: item.occurred.lo, title: describeDate(item.occurred) },
          shownDate(item.occurred),
        ),
      ),
      confidenceBadge(item.confidence),
    ),
    h("p", { class: "title person" }, item.person),
    h("p", { class: "role" }, item.role),
    item.note && h("p", { class: "fact" }, item.note),
    leaving &&
      h(
        "p",
        {
          class: "leaving-note",
          "data-departure": leaving.id,
          title:
            `a departure of ${item.person} as ${item.role} ` +
            "that has begun but not ended by the as-of day",
        },
        h("span", { class: "leaving-badge" }, "leaving?"),
        " departure ",
        h(
          "time",
          { class: "date", datetime: leaving.occurred.lo, title: describeDate(leaving.occurred) },
          shownDate(leaving.occurred),
        ),
        ` (${leaving.confidence})`,
      ),
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
          items.map((item) =>
            key === "executives" ? executiveItem(item) : stateItem(type, item, false),
          ),
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
