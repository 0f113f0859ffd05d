// The swimlane chart: one lane per company, each event placed by its date, a fuzzy date drawn
// as its range; the legend; and the as-of line of the company view.

import { $, SVG_NS, h, svg } from "./dom.js";
import {
  DAY_MS,
  TYPES,
  dayNumber,
  describe,
  describeDate,
  isoDay,
  pad,
  shownDate,
  today,
} from "./format.js";
import { companyName, state } from "./state.js";

// A click on the chart selects a company or finds a card. Both the company view and the
// chronology import this module (they redraw the chart), so main.js hands these two in rather
// than this module importing them back in a circle.
const actions = { selectCompany: null, focusCard: null };
export const wireLanes = (handlers) => Object.assign(actions, handlers);

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

export function renderLegend() {
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
export const laneDirty = (company) => lanes.dirty.add(company);
// A fresh load draws every lane anew.
export const forgetLanes = () => lanes.drawn.clear();

export function renderLanes(shown) {
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
            if (offset < labelWidth) return actions.selectCompany(company);
            const day = Math.floor(start + ((offset - labelWidth) / plot) * (end - start));
            actions.selectCompany(company, isoDay(day));
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
          onclick: () => actions.selectCompany(company),
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
  if (state.selected && !state.badAsOf) {
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
        if (mark) actions.focusCard(mark.dataset.id, true);
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
