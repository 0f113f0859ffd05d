// The Timeline dashboard: the chronology of every company, live from /v1/stream, a swimlane
// chart and one company's state as of a date. Plain DOM: every text from the server goes in
// through textContent or a text node, never as markup.
//
// This module wires the page's controls to the others. The modules import downwards only
// (dom, format, state, data; swimlanes; chronology; company; live), so the two clicks that
// reach upwards, a company on a card or the chart and a mark's card, are handed in here.

import { loadChanges, loadCompanyChanges, moreChanges, setSince } from "./changes.js";
import { focusCard, render, wireCards } from "./chronology.js";
import { loadCompany, selectCompany, setAsOf, stepAsOf } from "./company.js";
import { hideError, setToken, showError, showTokenForm } from "./data.js";
import { $ } from "./dom.js";
import { loadAll, setKnownAt } from "./live.js";
import { RENDER_STEP, loadHash, saveHash, state } from "./state.js";
import { renderLegend, wireLanes } from "./swimlanes.js";
import { wireZoom } from "./zoom.js";

// The address's hash was edited in an open tab (or a link to another view followed): read the
// view from it again and redraw what it changes.
function followHash() {
  const before = { ...state, filters: { ...state.filters } };
  loadHash();
  if (state.hashProblem) showError(state.hashProblem);
  else if (before.hashProblem) hideError();
  state.limit = RENDER_STEP;
  render();
  if (state.knownAt !== before.knownAt) {
    loadAll(); // a view known at another point: read it all again
    return;
  }
  const company =
    state.selected !== before.selected ||
    state.asOf !== before.asOf ||
    state.badAsOf !== before.badAsOf;
  if (company) loadCompany();
  if (state.since !== before.since) loadChanges();
  else if (company) loadCompanyChanges();
}

function start() {
  wireCards({ selectCompany });
  wireLanes({ selectCompany, focusCard });
  wireZoom(() => render());
  loadHash();
  if (state.hashProblem) showError(state.hashProblem);
  addEventListener("hashchange", followHash);
  renderLegend();
  $("#filter-company").addEventListener("change", (e) => {
    state.filters.company = e.target.value;
    state.limit = RENDER_STEP;
    saveHash();
    render();
  });
  $("#filter-type").addEventListener("change", (e) => {
    state.filters.type = e.target.value;
    state.limit = RENDER_STEP;
    saveHash();
    render();
  });
  $("#order").addEventListener("click", (e) => {
    state.newestFirst = !state.newestFirst;
    state.limit = RENDER_STEP;
    e.target.textContent = state.newestFirst ? "Newest first" : "Oldest first";
    render();
  });
  $("#all-years").addEventListener("change", (e) => {
    state.allYears = e.target.checked;
    render();
  });
  $("#company-select").addEventListener("change", (e) => selectCompany(e.target.value));
  $("#as-of-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setAsOf($("#as-of").value);
  });
  $("#as-of").addEventListener("change", (e) => setAsOf(e.target.value));
  $("#as-of-back").addEventListener("click", () => stepAsOf(-1));
  $("#as-of-next").addEventListener("click", () => stepAsOf(1));
  $("#as-of-today").addEventListener("click", () => {
    $("#as-of").value = "";
    setAsOf("");
  });
  $("#token-button").addEventListener("click", () => showTokenForm($("#token-form").hidden));
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setToken($("#token-input").value.trim());
    $("#token-input").value = "";
    showTokenForm(false);
    state.retryMs = 1000;
    loadAll();
  });
  $("#token-forget").addEventListener("click", () => {
    setToken("");
    showTokenForm(false);
    loadAll();
  });
  $("#error-close").addEventListener("click", hideError);
  $("#known-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setKnownAt($("#known-at").value);
  });
  $("#known-now").addEventListener("click", () => setKnownAt(""));
  $("#pinned-now").addEventListener("click", () => setKnownAt(""));
  $("#since-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setSince($("#since").value);
  });
  $("#since-refresh").addEventListener("click", loadChanges);
  $("#changes-more").addEventListener("click", moreChanges);
  $("#more").addEventListener("click", () => {
    state.limit += RENDER_STEP;
    render();
  });
  let width = 0;
  new ResizeObserver(([entry]) => {
    if (Math.round(entry.contentRect.width) === width) return;
    width = Math.round(entry.contentRect.width);
    render();
  }).observe($("#lanes"));
  showTokenForm(false);
  loadAll();
}

start();
