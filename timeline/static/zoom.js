// The swimlanes' time axis: its ticks, the window shown (state.view: all of it, or a window the
// user picked), and the ways to pick one: the wheel zooms around the pointer, a drag across the
// lanes pans, and the range brush under the axis shows the whole range with the window on it
// (drag across it to pick a window, drag the window to move it, drag its edges to widen it,
// double-click it to see everything). The window is kept in the address as from=…&to=….

import { $, svg } from "./dom.js";
import { DAY_MS, FIRST_DAY, dayNumber, isoDay, pad } from "./format.js";
import { saveHash, state } from "./state.js";

export const MIN_SPAN = 7; // days: the narrowest window
const FIRST = dayNumber(FIRST_DAY);
const LAST = dayNumber("9999-12-31") + 1;

// ---- ticks

const DAY_STEPS = [1, 2, 7, 14];
const MONTH_STEPS = [1, 3, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000, 12000, 24000];

// Ticks from start to end, at least `gap` pixels apart over `plot` pixels: days, months,
// quarters or years, whichever fits.
export function ticks(start, end, plot, gap = 78) {
  const span = end - start;
  const most = Math.max(2, Math.floor(plot / gap));
  const out = [];
  const days = DAY_STEPS.find((step) => span / step <= most);
  if (days) {
    for (let day = Math.ceil(start / days) * days; day <= end; day += days)
      out.push({ day, label: isoDay(day) });
    return out;
  }
  const months = MONTH_STEPS.find((step) => span / (30.44 * step) <= most) || 120000;
  const first = new Date(start * DAY_MS);
  let index = first.getUTCFullYear() * 12 + first.getUTCMonth();
  index = Math.floor(index / months) * months;
  for (; ; index += months) {
    const [year, month] = [Math.floor(index / 12), index % 12];
    const date = new Date(0);
    date.setUTCFullYear(year, month, 1);
    const day = date.getTime() / DAY_MS;
    if (day > end) break;
    if (day < start) continue;
    const label =
      months % 12 === 0
        ? `${year}`
        : months % 3 === 0
          ? `${year} Q${month / 3 + 1}`
          : `${year}-${pad(month + 1)}`;
    out.push({ day, label });
  }
  return out;
}

// ---- the window

// A window of at least MIN_SPAN days, within the calendar.
function clampView(start, end) {
  let span = Math.min(Math.max(end - start, MIN_SPAN), LAST - FIRST);
  if (end - start < MIN_SPAN) start = (start + end - span) / 2;
  start = Math.min(Math.max(start, FIRST), LAST - span);
  span = Math.min(span, LAST - start);
  return { start, end: start + span };
}

const wiring = { redraw: null, hashTimer: null };

// A new window (null: everything), drawn in the next frame and kept in the address soon after:
// a wheel sends many events a second, the address needs only the last.
export function setView(view) {
  state.view = view && clampView(view.start, view.end);
  wiring.redraw?.();
  clearTimeout(wiring.hashTimer);
  wiring.hashTimer = setTimeout(saveHash, 150);
}

// The panel's buttons, and what redraws the chart (handed in by main.js).
export function wireZoom(redraw) {
  wiring.redraw = redraw;
  const around = (factor) => {
    const g = geometry;
    if (!g) return;
    const middle = (g.start + g.end) / 2;
    const half = ((g.end - g.start) * factor) / 2;
    setView({ start: middle - half, end: middle + half });
  };
  $("#zoom-in").addEventListener("click", () => around(0.5));
  $("#zoom-out").addEventListener("click", () => around(2));
  $("#zoom-fit").addEventListener("click", () => setView(null));
}

// ---- what the chart drew last: where its axis and brush are

// {labelWidth, plot, start, end, full: {start, end}, brushTop, brushHeight, lanesTop}
let geometry = null;
export function setGeometry(g) {
  geometry = g;
  const text = `${isoDay(Math.floor(g.start))} – ${isoDay(Math.ceil(g.end) - 1)}`;
  $("#lanes-window").textContent = state.view ? text : `all: ${text}`;
  $("#zoom-fit").hidden = !state.view;
}

const brushX = (g, full, day) =>
  g.labelWidth + ((day - full.start) / (full.end - full.start)) * g.plot;
const brushDay = (g, full, x) =>
  full.start + ((x - g.labelWidth) / g.plot) * (full.end - full.start);

// The brush: the whole range (with how many events fall where), and the window on it.
export function brushNodes(g, spans) {
  const { full } = g;
  const bins = new Array(Math.max(1, Math.floor(g.plot / 3))).fill(0);
  for (const [lo, hi] of spans) {
    const middle = (lo + hi) / 2;
    const bin = Math.floor(((middle - full.start) / (full.end - full.start)) * bins.length);
    if (bin >= 0 && bin < bins.length) bins[bin] += 1;
  }
  const most = Math.max(...bins, 1);
  const bottom = g.brushTop + g.brushHeight;
  const width = g.plot / bins.length;
  let path = "";
  bins.forEach((count, i) => {
    if (!count) return;
    const height = Math.max(1.5, (Math.log1p(count) / Math.log1p(most)) * (g.brushHeight - 3));
    path += `M${(g.labelWidth + i * width).toFixed(1)},${bottom}v${-height.toFixed(1)}`;
    path += `h${Math.max(width - 0.6, 0.8).toFixed(1)}v${height.toFixed(1)}z`;
  });
  const [left, right] = [brushX(g, full, g.start), brushX(g, full, g.end)];
  const handle = (x, side) =>
    svg("rect", {
      class: `brush-handle ${side}`,
      x: x - 2,
      y: g.brushTop - 1,
      width: 4,
      height: g.brushHeight + 2,
      rx: 1.5,
    });
  return svg(
    "g",
    { class: "brush", "aria-label": "the whole range, and the window shown on it" },
    svg(
      "rect",
      {
        class: "brush-track",
        x: g.labelWidth,
        y: g.brushTop,
        width: g.plot,
        height: g.brushHeight,
        rx: 3,
      },
      svg("title", {}, "drag to pick a window; drag the window to move it; double-click: all"),
    ),
    svg("path", { class: "brush-density", d: path }),
    svg("rect", {
      class: "brush-window",
      x: left,
      y: g.brushTop,
      width: Math.max(right - left, 2),
      height: g.brushHeight,
    }),
    handle(left, "left"),
    handle(right, "right"),
    svg(
      "text",
      { class: "brush-label", x: g.labelWidth - 8, y: bottom - 4, "text-anchor": "end" },
      "range",
    ),
  );
}

// ---- the pointer and the wheel on the chart

// The chart's own handlers: a press that moved is a drag, and its click is not a click.
export function attachZoom(chart) {
  let drag = null;
  let swallow = false;
  const local = (e) => {
    const bounds = chart.getBoundingClientRect();
    return { x: e.clientX - bounds.left, y: e.clientY - bounds.top };
  };
  const inPlot = (g, x) => x >= g.labelWidth && x <= g.labelWidth + g.plot;

  chart.addEventListener(
    "wheel",
    (e) => {
      const g = geometry;
      const { x } = local(e);
      if (!g || !inPlot(g, x)) return; // over the names, the page scrolls as ever
      e.preventDefault();
      const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      const [dx, dy] = [e.deltaX * unit, e.deltaY * unit];
      const span = g.end - g.start;
      if (Math.abs(dx) > Math.abs(dy)) {
        const shift = (dx / g.plot) * span;
        setView({ start: g.start + shift, end: g.end + shift });
        return;
      }
      const day = g.start + ((x - g.labelWidth) / g.plot) * span;
      const wanted = span * Math.exp(dy * 0.002);
      const next = Math.min(Math.max(wanted, MIN_SPAN), LAST - FIRST);
      const start = day - ((day - g.start) * next) / span;
      setView({ start, end: start + next });
    },
    { passive: false },
  );

  chart.addEventListener("pointerdown", (e) => {
    const g = geometry;
    if (!g || e.button !== 0) return;
    const { x, y } = local(e);
    if (!inPlot(g, x)) return;
    const full = g.full;
    let mode = null;
    if (y >= g.brushTop - 2 && y <= g.brushTop + g.brushHeight + 2) {
      const [left, right] = [brushX(g, full, g.start), brushX(g, full, g.end)];
      if (Math.abs(x - left) <= 5) mode = "left";
      else if (Math.abs(x - right) <= 5) mode = "right";
      else if (x > left && x < right) mode = "move";
      else mode = "pick";
    } else if (y >= g.lanesTop) mode = "pan";
    if (!mode) return;
    drag = { mode, x, id: e.pointerId, start: g.start, end: g.end, full, moved: false, g };
    drag.anchor = brushDay(g, full, x);
  });

  chart.addEventListener("pointermove", (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const { x } = local(e);
    const dx = x - drag.x;
    if (!drag.moved) {
      if (Math.abs(dx) < 4) return;
      drag.moved = true;
      chart.setPointerCapture(e.pointerId);
      chart.classList.add("dragging");
    }
    const { g, full, start, end } = drag;
    const fullSpan = full.end - full.start;
    const day = brushDay(g, full, x);
    if (drag.mode === "pan") {
      const shift = (-dx / g.plot) * (end - start);
      setView({ start: start + shift, end: end + shift });
    } else if (drag.mode === "move") {
      const shift = (dx / g.plot) * fullSpan;
      setView({ start: start + shift, end: end + shift });
    } else if (drag.mode === "left") {
      setView({ start: Math.min(day, end - MIN_SPAN), end });
    } else if (drag.mode === "right") {
      setView({ start, end: Math.max(day, start + MIN_SPAN) });
    } else {
      const [a, b] = [Math.min(drag.anchor, day), Math.max(drag.anchor, day)];
      setView({ start: a, end: Math.max(b, a + MIN_SPAN) });
    }
  });

  const finish = (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    if (drag.moved) {
      swallow = true;
      setTimeout(() => {
        swallow = false;
      }, 0);
      chart.classList.remove("dragging");
    }
    drag = null;
  };
  chart.addEventListener("pointerup", finish);
  chart.addEventListener("pointercancel", finish);
  // Seen first, on the way down: a drag's click reaches neither a lane nor a mark.
  chart.addEventListener(
    "click",
    (e) => {
      if (!swallow) return;
      swallow = false;
      e.stopPropagation();
      e.preventDefault();
    },
    true,
  );
  chart.addEventListener("dblclick", (e) => {
    const g = geometry;
    const { y } = local(e);
    if (g && y >= g.brushTop - 2 && y <= g.brushTop + g.brushHeight + 2) setView(null);
  });
}

// ---- names that fit

// A name cut to about `width` pixels (wide characters count double), with "…" when cut; the
// caller gives the whole name as a tooltip.
export function fitName(name, width, charWidth = 7.2) {
  let used = 0;
  let out = "";
  for (const char of name) {
    used += /[\u1100-\uffff]/.test(char) ? charWidth * 1.8 : charWidth;
    if (used > width) return { text: `${out.trimEnd()}…`, cut: true };
    out += char;
  }
  return { text: name, cut: false };
}
