// The Extrapolate page: routes (#/, #/run/NAME, #/compare), charts drawn by the server (SVG), hover, toggling
// series, hiding runs, and live updates by polling /api/version. No library: every line is here.
"use strict";

const view = document.getElementById("view");
const tooltip = document.getElementById("tooltip");
const live = document.getElementById("live");
const hidden = new Set(); // "chart-id|series" toggled off, kept across refreshes
let version = null;
let rendering = false;

// Tests and scripts read the page's data here: the points of every chart as drawn.
window.extrapolate = { ready: false, renders: 0, charts: {} };

function escapeHTML(text) {
  return String(text).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + message);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function links(items) {
  return '<div class="downloads">' + items.map(([label, href]) =>
    `<a href="${escapeHTML(href)}" download>${escapeHTML(label)}</a>`).join("") + "</div>";
}

// Inserts an SVG chart, restores toggled series and records its points.
async function chart(id, url) {
  const holder = document.getElementById(id);
  if (!holder) return;
  try {
    holder.innerHTML = await api(url);
  } catch (error) {
    holder.innerHTML = `<p>${escapeHTML(error.message)}</p>`;
    return;
  }
  const series = {};
  holder.querySelectorAll("g.series").forEach(group => {
    const name = group.dataset.series;
    if (hidden.has(id + "|" + name)) group.classList.add("off");
    series[name] = Array.from(group.querySelectorAll("circle")).map(c => ({ x: Number(c.dataset.x), y: Number(c.dataset.y) }));
    const legend = group.querySelector("text.legend");
    if (legend) legend.addEventListener("click", () => {
      group.classList.toggle("off");
      const key = id + "|" + name;
      if (group.classList.contains("off")) hidden.add(key); else hidden.delete(key);
    });
  });
  window.extrapolate.charts[id] = series;
}

function section(title, body) { return `<section><h2>${escapeHTML(title)}</h2>${body}</section>`; }

// Runs hidden from the overview, kept in this browser (the store keeps them: `extrapolate prune` removes a run).
function hiddenRuns() {
  try { return new Set(JSON.parse(localStorage.getItem("extrapolate.hiddenRuns") || "[]")); } catch (_) { return new Set(); }
}

function setHiddenRuns(set) {
  try { localStorage.setItem("extrapolate.hiddenRuns", JSON.stringify([...set])); } catch (_) { /* private mode */ }
}

async function overview() {
  const [runs, alerts] = await Promise.all([api("/api/runs"), api("/api/alerts")]);
  const hiddenSet = hiddenRuns();
  const hide = [...hiddenSet].map(encodeURIComponent).join(",");
  const query = hide ? `?hide=${encodeURIComponent(hide)}` : "";
  let html = section("Extrapolation: newest checkpoint of each run",
    '<div class="chart" id="overview-chart"></div>' +
    links([["curves (JSON)", "/api/curves?newest=true"], ["all results (CSV)", "/api/results?format=csv"],
      ["all results (JSON)", "/api/results"]]) +
    '<div id="ratios"></div>');
  const unmeasured = alerts.unmeasured || [];
  const notMeasured = unmeasured.length === 0 ? "" : " Not measurable at " + alerts.thresholds.ratioMultiple + "L: " +
    unmeasured.map(u => `${escapeHTML(u.run)} (${escapeHTML(u.reason)})`).join("; ") + ".";
  html += section(`Alerts (${alerts.alerts.length})`, alerts.alerts.length === 0
    ? "<p>None: no run's perplexity at kL rose while it fell at L, and no ratio ppl(" + alerts.thresholds.ratioMultiple +
      "L)/ppl(L) exceeds " + alerts.thresholds.ratio + (unmeasured.length ? " among the runs where it could be measured" : "") +
      "." + notMeasured + "</p>"
    : "<ul>" + alerts.alerts.map(a => `<li class="alert">${escapeHTML(a.message)}</li>`).join("") + "</ul>" +
      (notMeasured ? `<p>${notMeasured}</p>` : ""));
  html += section("Runs", '<p><label>find <input id="run-filter" type="search" placeholder="run name"></label> ' +
    `<span class="note">${hiddenSet.size ? hiddenSet.size + " hidden from the chart and table" : ""}</span></p>` +
    "<table><thead><tr><th class=\"text\">shown</th><th>run</th><th>newest step</th><th>checkpoints</th><th>jobs</th>" +
    "<th>results</th></tr></thead><tbody>" + runs.runs.map(run =>
      `<tr data-run="${escapeHTML(run.name)}"><td class="text"><input type="checkbox" class="show-run"` +
      `${hiddenSet.has(run.name) ? "" : " checked"}></td>` +
      `<td><a href="#/run/${encodeURIComponent(run.name)}">${escapeHTML(run.name)}</a></td>` +
      `<td>${run.newestStep ?? "–"}</td><td class="text">${counts(run.checkpoints)}</td>` +
      `<td class="text">${counts(run.jobs)}</td><td>${run.results}</td></tr>`).join("") + "</tbody></table>");
  const workers = await api("/api/workers");
  html += section(`Workers (${workers.workers.length})`, workers.workers.length === 0
    ? `<p>None heard from in the last ${workers.window} s.</p>`
    : "<table><thead><tr><th class=\"text\">worker</th><th class=\"text\">host</th><th>pid</th>" +
      "<th class=\"text\">roles</th><th>job</th><th>last heartbeat</th></tr></thead><tbody>" +
      workers.workers.map(w => `<tr class="worker"><td class="text">${escapeHTML(w.id)}</td>` +
        `<td class="text">${escapeHTML(w.host)}</td><td>${w.pid}</td><td class="text">${escapeHTML(w.roles.join(", "))}</td>` +
        `<td>${w.job ?? "–"}</td><td>${w.silentSeconds.toFixed(1)} s ago</td></tr>`).join("") +
      "</tbody></table>" + links([["workers (JSON)", "/api/workers"]]));
  view.innerHTML = html;
  document.getElementById("run-links").innerHTML = runs.runs.map(run =>
    `<a href="#/run/${encodeURIComponent(run.name)}">${escapeHTML(run.name)}</a>`).join(" ");
  view.querySelectorAll("input.show-run").forEach(box => box.addEventListener("change", () => {
    const set = hiddenRuns();
    const name = box.closest("tr").dataset.run;
    if (box.checked) set.delete(name); else set.add(name);
    setHiddenRuns(set);
    render();
  }));
  const filter = document.getElementById("run-filter");
  filter.addEventListener("input", () => {
    const text = filter.value.toLowerCase();
    view.querySelectorAll("tr[data-run]").forEach(row => {
      row.hidden = text !== "" && !row.dataset.run.toLowerCase().includes(text);
    });
  });
  await Promise.all([chart("overview-chart", "/charts/overview.svg" + query),
    api("/charts/ratios.html" + query).then(t => { document.getElementById("ratios").innerHTML = t; })]);
}


function counts(map) {
  return Object.entries(map).map(([state, n]) => `<span class="state-${state}">${n} ${state}</span>`).join(", ");
}

async function runPage(name) {
  const run = encodeURIComponent(name);
  const [data, curves] = await Promise.all([api(`/api/runs/${run}/checkpoints`), api(`/api/curves?run=${run}`)]);
  const evaluated = data.checkpoints.filter(c => c.jobs.some(j => j.done > 0));
  const newest = curves.curves[curves.curves.length - 1];
  const about = newest ? `<p class="about">Trained at L = ${newest.trainedLength} tokens` +
    (newest.trainedLengthSource ? ` (${escapeHTML(newest.trainedLengthSource)})` : "") +
    `; computed over ${escapeHTML(newest.provenance)}.` +
    (newest.unsupported && newest.unsupported.length ? " Not computable: " + newest.unsupported.map(u =>
      `${u.multiple}L (${escapeHTML(u.reason)})`).join("; ") + "." : "") + "</p>" : "";
  const chosen = Number(new URLSearchParams(location.hash.split("?")[1] || "").get("checkpoint")) ||
    (evaluated.length ? evaluated[evaluated.length - 1].id : null);
  let html = section(`${name}: extrapolation of every checkpoint`, about +
    '<div class="chart" id="run-chart"></div>' +
    links([["curves (JSON)", `/api/curves?run=${run}`], ["results (CSV)", `/api/results?run=${run}&format=csv`],
      ["results (JSON)", `/api/results?run=${run}`]]));
  html += section("Perplexity at each length by training step",
    '<div class="chart" id="steps-chart"></div>' +
    links([["results (CSV)", `/api/results?run=${run}&format=csv`], ["curves (JSON)", `/api/curves?run=${run}`]]));
  if (chosen) {
    html += section("Loss by position in the window",
      '<label>checkpoint <select id="position-checkpoint">' + evaluated.map(c =>
        `<option value="${c.id}"${c.id === chosen ? " selected" : ""}>${escapeHTML(c.step !== null ? "step " + c.step : c.path)}</option>`).join("") +
      '</select></label><div class="chart" id="positions-chart"></div>' +
      links([["positions (JSON)", `/api/positions?checkpoint=${chosen}`]]));
  }
  const passkey = (await api(`/api/results?run=${run}&task=passkey`)).results;
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  let passkeyChosen = null, passkeySeries = "model";
  if (passkey.length) {
    // Checkpoints with passkey results, oldest first; the newest by default.
    const byId = new Map();
    passkey.forEach(r => { if (!byId.has(r.checkpointID)) byId.set(r.checkpointID, r); });
    const choices = [...byId.values()].sort((a, b) => (a.step ?? -1) - (b.step ?? -1));
    passkeyChosen = Number(params.get("passkey")) || choices[choices.length - 1].checkpointID;
    const seriesNames = [...new Set(passkey.map(r => r.series))];
    passkeySeries = seriesNames.includes(params.get("series")) ? params.get("series") : seriesNames[0];
    html += section("Passkey retrieval",
      '<p class="about">A five-digit key hidden at a depth of filler text; retrieved when greedy decoding would write it ' +
      "(Docs/evaluation.md, \"Passkey retrieval\"). Hover a cell for its accuracy, Wilson interval and the key's " +
      "log-probability.</p>" +
      '<label>checkpoint <select id="passkey-checkpoint">' + choices.map(c =>
        `<option value="${c.checkpointID}"${c.checkpointID === passkeyChosen ? " selected" : ""}>` +
        `${escapeHTML(c.step !== null ? "step " + c.step : c.checkpoint)}</option>`).join("") + "</select></label> " +
      (seriesNames.length > 1 ? '<label>series <select id="passkey-series">' + seriesNames.map(n =>
        `<option${n === passkeySeries ? " selected" : ""}>${escapeHTML(n)}</option>`).join("") + "</select></label>" : "") +
      '<div class="chart heatmap" id="passkey-heatmap"></div>' +
      '<div class="chart" id="passkey-lengths-chart"></div><div class="chart" id="passkey-steps-chart"></div>' +
      links([["passkey cells (CSV)", `/api/results?run=${run}&task=passkey&format=csv`],
        ["passkey cells (JSON)", `/api/results?run=${run}&task=passkey`]]));
  }
  html += section("Checkpoints", "<table><thead><tr><th>step</th><th class=\"text\">state</th><th>results</th>" +
    "<th class=\"text\">path</th><th class=\"text\">error</th></tr></thead><tbody>" + data.checkpoints.map(c => {
      // The newest job of each task (perplexity, passkey), each with its state and progress.
      const latest = new Map();
      c.jobs.forEach(j => latest.set(j.task || "perplexity", j));
      const jobs = [...latest.entries()];
      const label = (task, text) => jobs.length > 1 ? `${task} ${text}` : text;
      const state = jobs.length ? jobs.map(([task, j]) =>
        `<span class="state-${j.state}">${escapeHTML(label(task, j.state))}</span>`).join("<br>") :
        `<span class="state-${c.state}">${escapeHTML(c.state)}</span>`;
      const progress = jobs.length ? jobs.map(([task, j]) => escapeHTML(label(task, j.done + "/" + (j.planned || "?"))))
        .join("<br>") : "–";
      const error = jobs.map(([, j]) => j.error).filter(Boolean).join("; ") || c.reason || "";
      return `<tr><td>${c.step ?? "–"}</td><td class="text">${state}</td>` +
        `<td>${progress}</td><td class="text">${escapeHTML(c.path)}</td>` +
        `<td class="error">${escapeHTML(error)}</td></tr>`;
    }).join("") + "</tbody></table>" + links([["checkpoints (JSON)", `/api/runs/${run}/checkpoints`]]));
  view.innerHTML = html;
  // Each choice keeps the others in the address, so a link shows the same view.
  const go = changes => {
    const next = new URLSearchParams(location.hash.split("?")[1] || "");
    Object.entries(changes).forEach(([k, v]) => next.set(k, v));
    location.hash = `#/run/${run}?${next}`;
  };
  const select = document.getElementById("position-checkpoint");
  if (select) select.addEventListener("change", () => go({ checkpoint: select.value }));
  const passkeySelect = document.getElementById("passkey-checkpoint");
  if (passkeySelect) passkeySelect.addEventListener("change", () => go({ passkey: passkeySelect.value }));
  const seriesSelect = document.getElementById("passkey-series");
  if (seriesSelect) seriesSelect.addEventListener("change", () => go({ series: seriesSelect.value }));
  await Promise.all([chart("run-chart", `/charts/runs/${run}/checkpoints.svg`),
    chart("steps-chart", `/charts/runs/${run}/steps.svg`),
    chosen ? chart("positions-chart", `/charts/positions.svg?checkpoint=${chosen}`) : null,
    passkeyChosen ? chart("passkey-heatmap",
      `/charts/passkey.svg?checkpoint=${passkeyChosen}&series=${encodeURIComponent(passkeySeries)}`) : null,
    passkeyChosen ? chart("passkey-lengths-chart", `/charts/runs/${run}/passkey-lengths.svg`) : null,
    passkeyChosen ? chart("passkey-steps-chart", `/charts/runs/${run}/passkey-steps.svg`) : null]);
}

// The evaluated checkpoints of one run, oldest first, as choices.
async function evaluatedOf(run) {
  if (!run) return [];
  const data = await api(`/api/runs/${encodeURIComponent(run)}/checkpoints`);
  return data.checkpoints.filter(c => c.jobs.some(j => j.done > 0))
    .map(c => ({ id: String(c.id), label: c.step !== null ? "step " + c.step : c.path }));
}

// The run of checkpoint `id`, for a link that names only the checkpoints.
async function runOf(id) {
  const rows = (await api(`/api/results?checkpoint=${encodeURIComponent(id)}`)).results;
  return rows.length ? rows[0].run : null;
}

// Two checkpoints, each chosen by run then step: a lab's hundred runs would make one list of every checkpoint
// unusable (and loading it would ask for every run's checkpoints).
async function comparePage() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const runs = (await api("/api/runs")).runs.filter(r => r.results > 0).map(r => r.name);
  let a = params.get("a"), b = params.get("b");
  let runA = params.get("ra") || (a ? await runOf(a) : null);
  let runB = params.get("rb") || (b ? await runOf(b) : null) || runs[runs.length - 1] || null;
  const listB = await evaluatedOf(runB);
  b = b || (listB.length ? listB[listB.length - 1].id : null);
  // Without a choice, A and B are two different checkpoints (B's run's two newest, else the newest of the run
  // before), never one against itself.
  runA = runA || (listB.length > 1 ? runB : runs[runs.length - 2] || runB);
  const listA = runA === runB ? listB : await evaluatedOf(runA);
  if (!a) {
    const others = listA.filter(o => o.id !== b);
    a = others.length ? others[others.length - 1].id : null;
  }
  const runSelect = (id, value) => `<select id="${id}">` + runs.map(r =>
    `<option value="${escapeHTML(r)}"${r === value ? " selected" : ""}>${escapeHTML(r)}</option>`).join("") + "</select>";
  const options = (list, value) => list.map(o =>
    `<option value="${o.id}"${o.id === value ? " selected" : ""}>${escapeHTML(o.label)}</option>`).join("");
  let html = section("Compare two checkpoints (paired bootstrap on the same windows)",
    `<p>A ${runSelect("compare-run-a", runA)} <select id="compare-a">${options(listA, a)}</select> ` +
    `B ${runSelect("compare-run-b", runB)} <select id="compare-b">${options(listB, b)}</select> ` +
    '<button id="compare-go">Compare</button></p>' +
    '<div id="compare-result"></div><div class="chart" id="compare-chart"></div>');
  view.innerHTML = html;
  for (const side of ["a", "b"]) {
    const runBox = document.getElementById(`compare-run-${side}`);
    runBox.addEventListener("change", async () => {
      const list = await evaluatedOf(runBox.value);
      document.getElementById(`compare-${side}`).innerHTML =
        options(list, list.length ? list[list.length - 1].id : null);
    });
  }
  document.getElementById("compare-go").addEventListener("click", () => {
    const value = id => encodeURIComponent(document.getElementById(id).value);
    location.hash = `#/compare?a=${value("compare-a")}&b=${value("compare-b")}` +
      `&ra=${value("compare-run-a")}&rb=${value("compare-run-b")}`;
  });
  if (params.get("a") && params.get("b")) {
    const url = `/api/compare?a=${params.get("a")}&b=${params.get("b")}`;
    const out = document.getElementById("compare-result");
    try {
      const result = await api(url);
      const same = params.get("a") === params.get("b") ? "<p class=\"alert\">A and B are the same checkpoint.</p>" : "";
      const weak = result.comparisons.some(c => c.warnings.length) ? "<p class=\"note\">* from fewer than 20 windows: " +
        "too few to trust the interval or P(B better); raise --budget.</p>" : "";
      out.innerHTML = same + "<table><thead><tr><th class=\"text\">series</th><th>length</th><th>ppl A</th><th>ppl B</th>" +
        "<th>B/A</th><th>95% interval of B/A</th><th>P(B better)</th></tr></thead><tbody>" +
        result.comparisons.map(c => {
          const star = c.warnings.length ? `<span class="few" title="${escapeHTML(c.warnings.join("; "))}">*</span>` : "";
          return `<tr><td class="text">${escapeHTML(c.series)}</td><td>${c.length} (${c.multiple}L)</td>` +
            `<td>${c.perplexityA.toPrecision(5)}</td><td>${c.perplexityB.toPrecision(5)}</td>` +
            `<td>${c.perplexityRatio.toPrecision(4)}</td><td>${Math.exp(c.interval.lower).toPrecision(4)} – ` +
            `${Math.exp(c.interval.upper).toPrecision(4)}${star}</td><td>${c.fractionBBetter.toFixed(3)}${star}</td></tr>`;
        }).join("") + "</tbody></table>" + weak + links([["comparison (JSON)", url]]);
      await chart("compare-chart", `/charts/compare.svg?a=${params.get("a")}&b=${params.get("b")}`);
    } catch (error) {
      out.innerHTML = `<p>${escapeHTML(error.message)}</p>`;
    }
  }
}

async function render() {
  if (rendering) return;
  rendering = true;
  const scrollY = window.scrollY;
  try {
    const hash = location.hash.split("?")[0];
    if (hash.startsWith("#/run/")) await runPage(decodeURIComponent(hash.slice(6)));
    else if (hash === "#/compare") await comparePage();
    else await overview();
    window.scrollTo(0, scrollY);
    window.extrapolate.renders += 1;
    window.extrapolate.ready = true;
    document.body.dataset.ready = "true";
    document.body.dataset.renders = String(window.extrapolate.renders);
  } catch (error) {
    view.innerHTML = `<section><h2>Cannot load</h2><p>${escapeHTML(error.message)}</p></section>`;
  } finally {
    rendering = false;
  }
}

// Live updates: re-render when the store changed (a result, a checkpoint, a job).
async function poll() {
  try {
    const now = await api("/api/version");
    live.textContent = (now.paused ? "worker paused · " : now.watching ? "live · " : "") + now.results + " results";
    live.className = now.paused ? "paused" : "";
    if (version !== null && now.version !== version) await render();
    version = now.version;
  } catch (error) {
    live.textContent = "disconnected";
    live.className = "error";
  }
}

// Hover: the exact values of a point (its SVG <title>) next to the pointer.
document.addEventListener("mouseover", event => {
  const target = event.target;
  if (target instanceof SVGCircleElement && target.dataset.x !== undefined) {
    const title = target.querySelector("title");
    tooltip.textContent = title ? title.textContent : `${target.dataset.x}, ${target.dataset.y}`;
    tooltip.hidden = false;
  }
});
document.addEventListener("mousemove", event => {
  tooltip.style.left = event.clientX + 12 + "px";
  tooltip.style.top = event.clientY + 12 + "px";
});
document.addEventListener("mouseout", event => {
  if (event.target instanceof SVGCircleElement) tooltip.hidden = true;
});

window.addEventListener("hashchange", render);
render().then(poll);
setInterval(poll, 2000);
