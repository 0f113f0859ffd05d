// "What changed since S1": the log's entries after a point of transaction time
// (GET /v1/changes, paged by next_cursor), each added, corrected, retracted or reinstated, and
// the selected company's state as of its day known at S1 against known at S2
// (GET /v1/companies/{company}/changes): what was added, removed or changed, list by list.
// S1 is the point typed in the panel, else the page's known-at point; S2 is the last position
// the page has seen, so the panel and the page talk about the same log. Re-read on demand.

import { api } from "./data.js";
import { $, h } from "./dom.js";
import { LIST_TYPES, TYPES, describe, describeDate, shownDate } from "./format.js";
import { companyName, saveHash, state } from "./state.js";

const PAGE = 100;

// Each kind with its words: the colour of a change is never the only thing that says it.
const KINDS = {
  added: "+ added",
  corrected: "✎ corrected",
  retracted: "✕ retracted",
  reinstated: "↺ reinstated",
  removed: "− removed",
  changed: "✎ changed",
};

// S1: the point typed in the panel, else the known-at point ("" when neither is set).
export function sincePoint() {
  if (state.since) return state.since;
  if (state.pinned) return String(state.pinned.position);
  return state.knownAt;
}

// S2: the last log position the page has seen (the head it follows, even when pinned).
const untilPoint = () => Math.max(state.known, state.streamFrom, state.lastId || 0);

export function setSince(text) {
  state.since = text.trim();
  $("#since").value = state.since;
  saveHash();
  loadChanges();
}

const text = (value) =>
  value === undefined || value === null
    ? "—"
    : Array.isArray(value)
      ? value.map(text).join(", ")
      : typeof value === "object"
        ? JSON.stringify(value)
        : String(value);

// What differs between two forms of one event or state item: its date, its confidence and
// each field of its data, as "field: before → after".
function differences(before, after) {
  if (!before || !after) return null;
  const rows = [];
  const row = (field, was, now) =>
    rows.push(
      h(
        "li",
        { "data-field": field },
        h("span", { class: "field" }, field),
        " ",
        h("del", { title: "before" }, was),
        " → ",
        h("ins", { title: "after" }, now),
      ),
    );
  if (before.occurred.value !== after.occurred.value)
    row("date", before.occurred.value, after.occurred.value);
  if (before.confidence !== after.confidence)
    row("confidence", before.confidence, after.confidence);
  // An event keeps its fields in `data`; a state item has them beside its id and date.
  const [was, now] = before.data ? [before.data, after.data] : [before, after];
  const skip = before.data ? new Set() : new Set(["id", "occurred", "confidence", "departure"]);
  const fields = [...new Set([...Object.keys(was || {}), ...Object.keys(now || {})])];
  for (const field of fields.filter((f) => !skip.has(f))) {
    const [a, b] = [text(was?.[field]), text(now?.[field])];
    if (a !== b) row(field, a, b);
  }
  const leaving = (item) => text(item.departure?.occurred?.value);
  if (!before.data && leaving(before) !== leaving(after))
    row("leaving?", leaving(before), leaving(after));
  return rows.length ? h("ul", { class: "diff" }, rows) : null;
}

function meta(kind, occurred, ...rest) {
  return h(
    "div",
    { class: "card-meta" },
    h("span", { class: "kind-badge" }, KINDS[kind] || kind),
    ...rest,
    occurred &&
      h(
        "time",
        { class: "date", datetime: occurred.lo, title: describeDate(occurred) },
        shownDate(occurred),
      ),
  );
}

// One entry of the log: what it did to its target.
function logEntry(change) {
  const shown = change.after || change.before || change.event;
  const about = describe(shown.type, shown.data || {});
  const reason = change.kind !== "added" && change.event.data?.reason;
  return h(
    "li",
    {
      class: `change change-${change.kind}`,
      "data-kind": change.kind,
      "data-position": change.position,
      "data-target": change.target || change.event.id,
      "data-type": shown.type,
    },
    meta(
      change.kind,
      shown.occurred,
      h("span", { class: "position", title: "its log position" }, `#${change.position}`),
      h("span", { class: "company" }, companyName(shown.company)),
      h("span", { class: "type", "data-type": shown.type }, TYPES[shown.type] || shown.type),
    ),
    h("p", { class: "title" }, about.title),
    change.kind === "corrected" && differences(change.before, change.after),
    reason && h("p", { class: "fact" }, `reason: ${reason}`),
  );
}

// One item of the company's state that was added, removed or changed.
function stateChange(kind, list, item, before) {
  const type = LIST_TYPES[list] || item.type;
  const about = describe(type, item);
  return h(
    "li",
    {
      class: `change change-${kind}`,
      "data-kind": kind,
      "data-list": list,
      "data-id": item.id,
      "data-type": type,
    },
    meta(kind, item.occurred, h("span", { class: "list-name" }, list)),
    h("p", { class: "title" }, about.title),
    before && differences(before, item),
  );
}

const problemNode = (problem) =>
  h(
    "div",
    { class: "problem", role: "alert" },
    h("strong", {}, problem.title || "Error"),
    " ",
    problem.detail || problem.message || "",
    ...(problem.errors || []).map((e) => h("div", {}, `${(e.loc || []).join(" › ")}: ${e.msg}`)),
  );

let logSeq = 0;
let cursor = null;

export async function loadChanges() {
  const since = sincePoint();
  const box = $("#changes-log");
  const seq = ++logSeq;
  $("#since").placeholder = state.pinned
    ? `the known-at point, ${state.pinned.position}`
    : "a position or a time";
  $("#changes-more").hidden = true;
  cursor = null;
  if (!since) {
    $("#changes-title").textContent = "What changed since …";
    $("#changes-note").textContent =
      "Type a log position or a time, or set Known at in the header.";
    box.replaceChildren();
    $("#company-changes").replaceChildren();
    return;
  }
  const until = untilPoint();
  $("#changes-title").textContent = `What changed since ${since}`;
  if (!until) {
    $("#changes-note").textContent = "the log is still being read";
    return; // the first load reads the changes when it is done
  }
  box.setAttribute("aria-busy", "true");
  try {
    const query = new URLSearchParams({ since, until: String(until), limit: String(PAGE) });
    const page = await api(`/v1/changes?${query}`);
    if (seq !== logSeq) return;
    box.replaceChildren(...page.changes.map(logEntry));
    cursor = page.next_cursor;
    $("#changes-more").hidden = !cursor;
    $("#changes-note").textContent = page.changes.length
      ? `the log's entries after ${since}, up to position ${until}`
      : `nothing was appended after ${since}, up to position ${until}`;
  } catch (problem) {
    if (seq !== logSeq) return;
    box.replaceChildren(h("li", {}, problemNode(problem)));
    $("#changes-note").textContent = "";
  } finally {
    if (seq === logSeq) box.removeAttribute("aria-busy");
  }
  loadCompanyChanges();
}

// The next page of the log's changes: the cursor keeps S1, the filters and S2.
export async function moreChanges() {
  if (!cursor) return;
  const seq = logSeq;
  const query = new URLSearchParams({ since: sincePoint(), cursor, limit: String(PAGE) });
  try {
    const page = await api(`/v1/changes?${query}`);
    if (seq !== logSeq) return;
    $("#changes-log").append(...page.changes.map(logEntry));
    cursor = page.next_cursor;
    $("#changes-more").hidden = !cursor;
  } catch (problem) {
    $("#changes-log").append(h("li", {}, problemNode(problem)));
  }
}

let companySeq = 0;

export async function loadCompanyChanges() {
  const since = sincePoint();
  const box = $("#company-changes");
  const seq = ++companySeq;
  if (!since || !state.selected || state.badAsOf || !state.known) {
    box.replaceChildren();
    return;
  }
  const query = new URLSearchParams({ since, until: String(untilPoint()) });
  if (state.asOf) query.set("as_of", state.asOf);
  try {
    const path = `/v1/companies/${encodeURIComponent(state.selected)}/changes?${query}`;
    const found = await api(path);
    if (seq !== companySeq) return;
    const items = [
      ...found.added.map((c) => stateChange("added", c.list, c.item)),
      ...found.removed.map((c) => stateChange("removed", c.list, c.item)),
      ...found.changed.map((c) => stateChange("changed", c.list, c.after, c.before)),
    ];
    box.replaceChildren(
      h(
        "h3",
        { class: "changes-company" },
        `${companyName(found.company)} as of ${found.as_of}: known at ${found.since.position}` +
          ` against ${found.until.position}`,
      ),
      items.length
        ? h("ol", { class: "changes" }, items)
        : h("p", { class: "empty" }, "Its state as of that day is the same."),
    );
  } catch (problem) {
    if (seq === companySeq) box.replaceChildren(problemNode(problem));
  }
}
