// The swimlane chart: one lane per company, each event placed by its date, a fuzzy date drawn
// as its range; the legend; and the as-of line of the company view. The window of time shown
// is all of it, or the one picked with the wheel, a drag or the brush (zoom.js). A range wider
// than the window is drawn faint; one that begins on the calendar's first day (`[..F]`, on or
// before F) fades in from the left edge instead of running from year 1.

import { $, SVG_NS, h, svg } from "./dom.js";
import {
  TYPES,
  dayNumber,
  describe,
  describeDate,
  exactDate,
  isoDay,
  onOrBefore,
  shownDate,
  today,
} from "./format.js";
import { companyName, state } from "./state.js";
import { attachZoom, brushNodes, fitName, setGeometry, ticks } from "./zoom.js";

// A click on the chart selects a company or finds a card. Both the company view and the
// chronology import this module (they redraw the chart), so main.js hands these two in rather
// than this module importing them back in a circle.
const actions = { selectCompany: null, focusCard: null };
export const wireLanes = (handlers) => Object.assign(actions, handlers);

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
    h(
      "span",
      { class: "legend-item", title: "a range wider than the window shown" },
      h("i", { class: "swatch wide" }),
      "wider than the window",
    ),
    h(
      "span",
      { class: "legend-item", title: "[..F]: some day up to F, however early" },
      h("i", { class: "swatch before" }),
      "on or before",
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
  // The whole range: every event's, except that an "on or before" range counts from its end
  // (it would begin in year 1).
  let [first, last] = [Infinity, -Infinity];
  const spans = [];
  for (const e of basis) {
    const hi = dayNumber(e.occurred.hi);
    const lo = onOrBefore(e.occurred) ? hi - 1 : dayNumber(e.occurred.lo);
    spans.push([lo, hi]);
    first = Math.min(first, lo);
    last = Math.max(last, hi);
  }
  let [start, end] = [first, last];
  if (end - start < 60) [start, end] = [start - 30, end + 30];
  const margin = (end - start) * 0.02;
  [start, end] = [start - margin, end + margin];
  const full = { start, end };
  const layout = [width, state.allYears, state.filters.company, state.filters.type].join("|");
  const before = lanes.axis;
  if (state.view) [start, end] = [state.view.start, state.view.end];
  else if (
    before &&
    !before.view &&
    before.layout === layout &&
    first >= before.start &&
    last <= before.end &&
    before.end - before.start <= (end - start) * 1.1
  )
    [start, end] = [before.start, before.end];
  lanes.axis = { layout, start, end, view: Boolean(state.view) };
  const zoomed = Boolean(state.view);
  const key = `${layout}|${start}|${end}`;
  if (key !== lanes.key) {
    lanes.key = key;
    lanes.drawn.clear();
  }

  const labelWidth = 190;
  const axisHeight = 24;
  const brushTop = axisHeight + 2;
  const brushHeight = 16;
  const lanesTop = brushTop + brushHeight + 6;
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
  // Zoomed in, the events wholly outside the window are not drawn; with everything shown, those
  // left out of the axis (registrations) sit at its edge.
  const drawLane = (company, events) => {
    const ends = [];
    const placed = [];
    for (const event of events) {
      const lo = dayNumber(event.occurred.lo);
      const hi = dayNumber(event.occurred.hi);
      if (zoomed && (hi <= start || lo >= end)) continue;
      const left = x(lo);
      const right = Math.max(x(hi), left + 7);
      let lane = ends.findIndex((end) => end + 2 <= left);
      if (lane === -1 && ends.length < maxRows) lane = ends.push(0) - 1;
      if (lane === -1) lane = ends.indexOf(Math.min(...ends));
      ends[lane] = Math.max(ends[lane], right);
      placed.push({ event, lo, hi, left, right, lane });
    }
    const height = Math.max(ends.length, 1) * row + 12;
    const name = fitName(companyName(company), labelWidth - 24);
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
          class: name.cut ? "lane-label cut" : "lane-label",
          x: 12,
          y: height / 2 + 4,
          onclick: () => actions.selectCompany(company),
        },
        name.text,
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
      const fade = ranged && onOrBefore(e.occurred);
      const wide = ranged && !fade && p.hi - p.lo > end - start;
      mark.setAttribute(
        "class",
        `mark${ranged ? " ranged" : ""}${outside ? " outside" : ""}` +
          `${fade ? " before" : ""}${wide ? " wide" : ""}`,
      );
      if (fade) mark.setAttribute("mask", "url(#fade-left)");
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
  for (const tick of ticks(start, end, plot)) {
    parts.push(
      svg("line", {
        class: "grid",
        x1: x(tick.day),
        x2: x(tick.day),
        y1: lanesTop - 2,
        y2: "100%",
      }),
    );
    // A label that would run past the chart's right edge is left out; its line stays.
    if (x(tick.day) + 3 + tick.label.length * 6.6 > width) continue;
    parts.push(
      svg("text", { class: "tick", x: x(tick.day) + 3, y: axisHeight - 10 }, tick.label),
    );
  }
  const geometry = { labelWidth, plot, start, end, brushTop, brushHeight, lanesTop };
  geometry.full = { start: Math.min(full.start, start), end: Math.max(full.end, end) };
  parts.push(brushNodes(geometry, spans));
  setGeometry(geometry);
  const groups = [];
  let top = lanesTop;
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
          y1: lanesTop - 2,
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
    // An "on or before" range fades in from the left: its mask, from clear to whole.
    const defs = svg(
      "defs",
      {},
      svg(
        "linearGradient",
        { id: "fade-gradient", x1: 0, x2: 1, y1: 0, y2: 0 },
        svg("stop", { offset: 0, "stop-color": "#fff", "stop-opacity": 0 }),
        svg("stop", { offset: 0.75, "stop-color": "#fff", "stop-opacity": 0.55 }),
        svg("stop", { offset: 1, "stop-color": "#fff", "stop-opacity": 1 }),
      ),
      svg(
        "mask",
        { id: "fade-left", maskContentUnits: "objectBoundingBox" },
        svg("rect", { x: -0.05, y: -0.5, width: 1.1, height: 2, fill: "url(#fade-gradient)" }),
      ),
    );
    lanes.grid = svg("g", { class: "axis" });
    lanes.rows = svg("g", { class: "rows" });
    lanes.overlay = svg("g", { class: "overlay" });
    lanes.svg.append(defs, lanes.grid, lanes.rows, lanes.overlay);
    attachZoom(lanes.svg);
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
    exactDate(e.occurred),
    mark.classList.contains("wide") && "its range is wider than the window shown: drawn faint",
    mark.classList.contains("before") && "on or before its end: it fades in from the left edge",
  ]
    .filter(Boolean)
    .join("\n");
  mark.append(svg("title", {}, text));
}
