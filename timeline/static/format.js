// What an event says, and when: its type's name, its date as written and as a range, a
// fuzzy as-of resolved to a day, and the text of a card or a state item.

import { h } from "./dom.js";

export const TYPES = {
  "company.registered": "Company registered",
  "team.formed": "Team formed",
  "model.launched": "Model launched",
  "filing.passed": "Filing passed",
  "ceo.letter": "CEO letter",
  "financial.report": "Financial report",
  "product.integrated": "Product integrated",
  "statement.made": "Statement",
  "executive.appointed": "Executive appointed",
  "executive.departed": "Executive departed",
};

// The company state's lists, each with its label, the event type its items come from and the
// name of one item.
export const SECTIONS = [
  ["models", "Models", "model.launched", "model"],
  ["teams", "Teams", "team.formed", "team"],
  ["filings", "Filings", "filing.passed", "filing"],
  ["letters", "Letters", "ceo.letter", "letter"],
  ["statements", "Statements", "statement.made", "statement"],
  ["integrations", "Integrations", "product.integrated", "integration"],
  ["financials", "Financials", "financial.report", "financial report"],
  ["executives", "Executives", "executive.appointed", "executive"],
];
export const LIST_TYPES = Object.fromEntries(SECTIONS.map(([key, , type]) => [key, type]));

const STAGES = { announced: "announced", internal_test: "internal test", public: "public" };
const PRECISION = {
  year: "year",
  quarter: "quarter",
  month: "month",
  day: "day",
  decade: "decade",
  on_or_before: "on or before",
  between: "some day between",
};
export const FIRST_DAY = "0001-01-01"; // the calendar's first day: `[..F]` begins on it

// ---- dates

export const DAY_MS = 86400000;

// The day number (days since 1970-01-01) of a calendar date; month and day may overflow, as
// Date.UTC's do. Not Date.UTC itself: it reads the years 0 to 99 as 1900 to 1999.
export function utcDay(year, month, day) {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return Math.round(date.getTime() / DAY_MS);
}

export function dayNumber(iso) {
  const [y, m, d] = iso.split("-").map(Number);
  return utcDay(y, m, d);
}
export const isoDay = (n) => new Date(n * DAY_MS).toISOString().slice(0, 10);
export const today = () => new Date().toISOString().slice(0, 10);
const lastDayOf = (year, month) => utcDay(year, month + 1, 0) - utcDay(year, month, 0);
export const pad = (n) => String(n).padStart(2, "0");

// "2023-Q1~" → "~2023-Q1": an approximate date reads best with its tilde in front.
export function shownDate(occurred) {
  const value = occurred.value;
  return value.endsWith("~") ? `~${value.slice(0, -1)}` : value;
}

// A range that begins on the calendar's first day is "on or before" its end.
export const onOrBefore = (occurred) => occurred.lo === FIRST_DAY;

export function describeDate(occurred) {
  const last = isoDay(dayNumber(occurred.hi) - 1);
  const range = onOrBefore(occurred)
    ? `on or before ${last}`
    : occurred.lo === last
      ? occurred.lo
      : `${occurred.lo} to ${last}`;
  const mark = occurred.value.endsWith("~")
    ? ", approximate"
    : occurred.value.endsWith("?")
      ? ", uncertain"
      : "";
  if (onOrBefore(occurred)) return range;
  return `${range} (${PRECISION[occurred.precision] || occurred.precision}${mark})`;
}

// The date exactly as the server has it: the text as sent, and its half-open range of days.
export const exactDate = (occurred) =>
  `${occurred.value} · ${occurred.lo}–${occurred.hi} (lo–hi, hi exclusive)`;

// An as-of may be fuzzy: a year, quarter or month stands for its last day.
export function resolveAsOf(text) {
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

export const joined = (parts, separator = " · ") => parts.filter(Boolean).join(separator);
export const list = (values) => (Array.isArray(values) && values.length ? values.join(", ") : "");
export const n = (items) => (Array.isArray(items) ? items.length : 0);

function metric(m) {
  const yoy =
    typeof m.yoy_pct === "number" ? ` (${m.yoy_pct >= 0 ? "+" : ""}${m.yoy_pct}% YoY)` : "";
  return `${m.name}: ${m.value}${m.unit ? ` ${m.unit}` : ""}${yoy}`;
}

// {title, summary, facts} for an event's type and data (or a state item's fields).
export function describe(type, d) {
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
    case "executive.appointed":
      return { title: `${d.person}, ${d.role}`, facts: [d.note] };
    case "executive.departed":
      return {
        title: `${d.person} leaves as ${d.role}`,
        facts: [d.successor && `successor: ${d.successor}`, d.note],
      };
    default:
      return { title: TYPES[type] || type };
  }
}

export function confidenceBadge(confidence) {
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

export function sourceBlock(source) {
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
