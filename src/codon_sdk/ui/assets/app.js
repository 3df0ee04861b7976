/* Codon run explorer: runs page, run page, compare. No dependencies, no network but the
 * explorer's own /api/ (and none at all in a report). Every value from the ledger is put in
 * the page as text (textContent), never as markup. */
"use strict";
(function () {
  const dataEl = document.getElementById("codon-data");
  const REPORT = dataEl ? JSON.parse(dataEl.textContent) : null;
  const app = document.getElementById("app");
  let poller = null;
  let routeSerial = 0;

  // ------------------------------------------------------------------ data source

  async function get(path) {
    if (REPORT) {
      if (Object.prototype.hasOwnProperty.call(REPORT.answers, path)) return REPORT.answers[path];
      throw new Error("not included in this report: " + path);
    }
    const response = await fetch(path, { headers: { accept: "application/json" }, credentials: "same-origin" });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const err = (body && body.error) || { status: response.status, code: "error", message: response.statusText };
      const e = new Error(err.message); e.status = err.status; e.code = err.code; throw e;
    }
    return body;
  }

  const enc = encodeURIComponent;
  const runPath = (id) => "/api/runs/" + enc(id);

  // ------------------------------------------------------------------ DOM helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "onclick" || k === "onchange" || k === "onsubmit") el.addEventListener(k.slice(2), v);
      else if (k === "testid") el.setAttribute("data-testid", v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "onclick") el.addEventListener("click", v);
      else if (k === "testid") el.setAttribute("data-testid", v);
      else if (v !== null && v !== undefined) el.setAttribute(k, String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  // replaceChildren with what h() accepts: nested arrays flattened, null and false left out
  function fill(el, ...children) {
    el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
      .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  }
  const badge = (word, testid) => h("span", { class: "badge " + String(word).replace(/\s+/g, "-"), testid }, String(word));
  const fmtTime = (iso) => (iso ? String(iso).replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : "");
  const fmtUs = (us) => (typeof us === "number" ? new Date(us / 1000).toISOString().replace("T", " ").replace("Z", "Z") : "");
  const fmtMs = (ms) => (ms === null || ms === undefined ? "" : ms < 1000 ? ms.toFixed(1) + " ms" : (ms / 1000).toFixed(2) + " s");
  const fmtCost = (c, complete) => (c === null || c === undefined ? (complete === false ? "unknown" : "") : "$" + Number(c).toFixed(6) + (complete === false ? "+" : ""));

  function value(v, runId) {
    if (v && typeof v === "object" && v.$clipped) {
      return h("div", {},
        h("pre", { testid: "clipped" }, v.preview + " …"),
        h("span", { class: "muted" }, "clipped (" + (v.bytes === null ? "?" : v.bytes) + " bytes); the whole value is in the event's JSON"));
    }
    if (typeof v === "string") return h("pre", {}, v);
    return h("pre", {}, JSON.stringify(v, null, 2));
  }

  function showError(err, what) {
    fill(app, h("div", { class: "banner error", testid: "error" },
      h("b", {}, what + ": "), String(err.message || err),
      err.status ? h("span", { class: "muted" }, " (HTTP " + err.status + ", " + err.code + ")") : null),
      h("p", {}, h("a", { href: "#/" }, "Back to the runs")));
  }

  // ------------------------------------------------------------------ routing

  function route() {
    if (poller) { clearInterval(poller); poller = null; }
    routeSerial += 1;
    const hash = location.hash || (REPORT ? "#/runs/" + enc(REPORT.run_id) : "#/");
    const [path, query] = hash.slice(1).split("?");
    const params = new URLSearchParams(query || "");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    document.getElementById("mode").textContent = REPORT
      ? "report exported " + REPORT.exported_at + " — verification at export: " + REPORT.verification_at_export
      : "live view of the ledger";
    if (parts[0] === "runs" && parts[1]) return runPage(parts[1], params, routeSerial);
    if (parts[0] === "compare") return comparePage(params.get("left"), params.get("right"));
    if (parts[0] === "replay" && parts[1]) return replayPage(parts[1]);
    if (REPORT) { location.hash = "#/runs/" + enc(REPORT.run_id); return; }
    return runsPage(params);
  }
  window.addEventListener("hashchange", route);

  // ------------------------------------------------------------------ runs page

  const FILTERS = ["status", "workload", "deployment", "logic_id", "q", "since", "until"];
  const STATUSES = ["", "running", "completed", "stopped", "failed", "interrupted", "pending_approval", "stale"];

  async function runsPage(params) {
    const offset = Number(params.get("offset") || 0);
    const query = new URLSearchParams();
    for (const f of FILTERS) if (params.get(f)) query.set(f, params.get(f));
    query.set("offset", offset); query.set("limit", 50);
    const form = h("form", { class: "filters", testid: "filters", onsubmit: (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      for (const f of FILTERS) { const v = form.elements[f].value.trim(); if (v) q.set(f, v); }
      location.hash = "#/?" + q.toString();
    } },
      h("label", {}, "status", h("select", { name: "status", testid: "filter-status" },
        STATUSES.map((st) => h("option", { value: st, selected: params.get("status") === st }, st || "any")))),
      ...[["workload", "workload"], ["deployment", "deployment"], ["logic_id", "logic id"], ["q", "run id contains"],
          ["since", "started since"], ["until", "started until"]].map(([name, label]) =>
        h("label", {}, label, h("input", { name, value: params.get(name) || "", testid: "filter-" + name, size: 14 }))),
      h("button", { type: "submit", testid: "apply-filters" }, "Filter"),
      h("a", { href: "#/" }, "clear"));
    fill(app, h("h1", {}, "Runs"), form, h("p", { class: "muted" }, "Loading…"));
    let page;
    try { page = await get("/api/runs?" + query.toString()); } catch (err) { return showError(err, "Cannot list runs"); }
    const rows = page.items.map((r) => h("tr", { testid: "run-row", "data-run-id": r.run_id },
      h("td", {}, h("a", { href: "#/runs/" + enc(r.run_id), class: "mono" }, r.run_id),
        r.parent_run_id ? h("div", { class: "muted" }, "forked from ", h("a", { href: "#/runs/" + enc(r.parent_run_id) }, r.parent_run_id)) : null,
        r.children && r.children.length ? h("div", { class: "muted" }, "forks: ", r.children.map((c) => [h("a", { href: "#/runs/" + enc(c) }, c), " "])) : null),
      h("td", {}, badge(r.status), r.stale ? [" ", badge("stale")] : null,
        r.pending_question ? h("div", { class: "muted" }, "awaits: " + r.pending_question) : null),
      h("td", {}, r.workload_name + ":" + r.workload_version, h("div", { class: "muted" }, r.deployment_id)),
      h("td", {}, fmtTime(r.started_at)),
      h("td", { class: "num" }, fmtMs(r.duration_ms)),
      h("td", { class: "num" }, r.activations),
      h("td", { class: "num" }, r.tokens || ""),
      h("td", { class: "num" }, fmtCost(r.cost_usd, r.cost_complete)),
      h("td", {}, badge(r.verification, "verification"))));
    const table = h("table", { testid: "runs-table" },
      h("thead", {}, h("tr", {}, ["run", "status", "workload / deployment", "started", "duration", "activations", "tokens", "cost", "record"]
        .map((t, i) => h("th", { class: i >= 4 && i <= 7 ? "num" : null }, t)))),
      h("tbody", {}, rows));
    const pager = h("div", { class: "pager", testid: "pager" },
      h("span", {}, page.total ? `${page.offset + 1}–${page.offset + page.items.length} of ${page.total}` : "no runs match"),
      page.offset > 0 ? h("a", { href: pageHref(params, Math.max(0, page.offset - page.limit)), testid: "prev" }, "← newer") : null,
      page.next_offset !== null ? h("a", { href: pageHref(params, page.next_offset), testid: "next" }, "older →") : null);
    fill(app, h("h1", {}, "Runs"), form, table, pager);
  }
  function pageHref(params, offset) { const q = new URLSearchParams(params); q.set("offset", offset); return "#/?" + q.toString(); }

  // ------------------------------------------------------------------ run page

  async function runPage(runId, params, serial) {
    fill(app, h("p", { class: "muted" }, "Loading run " + runId + "…"));
    let detail;
    try { detail = await get(runPath(runId)); } catch (err) { return showError(err, "Cannot show run " + runId); }
    let acts;
    try { acts = await get(runPath(runId) + "/activations?offset=0&limit=200"); } catch (err) { return showError(err, "Cannot read activations"); }
    if (serial !== routeSerial) return;
    const state = { runId, detail, acts, selected: null, eventsOffset: 0 };
    renderRun(state);
    const wanted = params.get("activation");
    if (wanted !== null) selectActivation(state, Number(wanted));
    const ev = params.get("event");
    if (ev !== null) showEvents(state, Math.floor(Number(ev) / 100) * 100, Number(ev));
    if (!REPORT && (detail.run.status === "running")) startLive(state, serial);
  }

  function startLive(state, serial) {
    let last = state.detail.run.event_count;
    poller = setInterval(async () => {
      if (serial !== routeSerial) return;
      let headInfo;
      try { headInfo = await get(runPath(state.runId) + "/head"); } catch (e) { return; }
      if (headInfo.event_count === last) return;
      last = headInfo.event_count;
      try {
        state.detail = await get(runPath(state.runId));
        state.acts = await get(runPath(state.runId) + "/activations?offset=0&limit=200");
      } catch (e) { return; }
      if (serial !== routeSerial) return;
      const selected = state.selected;
      renderRun(state);
      if (selected !== null) selectActivation(state, selected);
      if (headInfo.status !== "running") { clearInterval(poller); poller = null; }
    }, 1000);
  }

  function renderRun(state) {
    const { detail, runId } = state;
    const r = detail.run, v = detail.verification;
    const parts = [];
    parts.push(h("h1", {}, "Run ", h("span", { class: "mono", testid: "run-id" }, r.run_id)));
    if (v.status === "tampered") {
      parts.push(h("div", { class: "banner tampered", testid: "tampered-banner" },
        "This run's record does not verify: it was changed after it was written (TAMPERED). What follows is what the database holds, not a verified record."));
    } else if (v.status === "incomplete") {
      parts.push(h("div", { class: "banner warn" }, "Record incomplete: " + (r.status === "running" ? "the run is still going." : "the run has not ended.")));
    }
    parts.push(h("div", { class: "stats", testid: "run-stats" },
      stat("status", badge(r.status, "run-status")), stat("record", badge(v.status, "verification-badge")),
      stat("workload", r.workload_name + ":" + r.workload_version), stat("deployment", r.deployment_id),
      stat("started", fmtTime(r.started_at)), stat("duration", fmtMs(r.duration_ms)),
      stat("events", h("span", { testid: "event-count" }, r.event_count)), stat("activations", h("span", { testid: "activation-count" }, r.activations)),
      stat("LLM calls", r.llm_calls), stat("tokens", r.tokens), stat("cost", h("span", { testid: "run-cost" }, fmtCost(r.cost_usd, r.cost_complete) || "—"))));
    parts.push(h("div", { class: "muted" }, "logic id ", h("code", {}, r.logic_id),
      r.parent_run_id ? [" · forked from ", h("a", { href: "#/runs/" + enc(r.parent_run_id) }, r.parent_run_id)] : null,
      r.children && r.children.length ? [" · forks: ", r.children.map((c) => [h("a", { href: "#/runs/" + enc(c) }, c), " "])] : null));
    if (!REPORT) parts.push(compareForm(runId));
    parts.push(findings(state));
    if (detail.pending) parts.push(h("div", { class: "banner warn", testid: "pending" }, "Waiting for approval at ", detail.pending.node, ": ", detail.pending.reason));
    parts.push(h("div", { class: "grid" },
      h("div", { class: "side" }, h("h2", {}, "Graph"), h("div", { class: "panel", testid: "graph" }, graphSvg(state))),
      h("div", { class: "side" }, h("h2", {}, "Timeline"), h("div", { class: "panel", testid: "timeline" }, timelineSvg(state)))));
    parts.push(h("div", { class: "grid" },
      h("div", { class: "side" }, h("h2", {}, "Activations"), activationsTable(state)),
      h("div", { class: "side" }, h("h2", {}, "Activation"), h("div", { class: "panel", testid: "activation-panel", id: "panel" },
        h("p", { class: "muted" }, "Select an activation in the graph, the timeline or the list.")),
        h("h2", {}, "Token lineage"), h("div", { class: "panel", testid: "lineage", id: "lineage" },
          h("p", { class: "muted" }, "Select a token (an input or an emitted token) to see where it came from and what it caused.")))));
    parts.push(h("h2", {}, "Approvals"), approvals(detail));
    parts.push(h("h2", {}, "Code identity"), identity(detail));
    parts.push(h("h2", {}, "Ledger events"), h("div", { class: "tabs" },
      h("button", { testid: "show-events", onclick: () => showEvents(state, 0, null) }, "All events"),
      h("button", { testid: "show-custom", onclick: () => showEvents(state, 0, null, "custom") }, "Custom events (" + detail.custom_events + ")")),
      h("div", { id: "events", testid: "events" }));
    fill(app, ...parts);
  }

  const stat = (label, val) => h("div", {}, h("span", { class: "muted" }, label), h("b", {}, val));

  function compareForm(runId) {
    const input = h("input", { name: "other", placeholder: "another run id", testid: "compare-with", size: 24 });
    return h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) location.hash = "#/compare?left=" + enc(runId) + "&right=" + enc(input.value.trim()); } },
      h("label", {}, "compare with", input), h("button", { type: "submit", testid: "compare-go" }, "Compare"),
      h("a", { href: "#/replay/" + enc(runId), testid: "replay-link" }, "compare with a replay on today's code"));
  }

  function findings(state) {
    const v = state.detail.verification;
    if (!v.findings.length) return h("div", { class: "muted", testid: "findings" }, "Verification: " + v.status + (v.checked.length ? " (checked: " + v.checked.join("; ") + ")" : ""));
    return h("div", { class: "panel", testid: "findings" }, h("b", {}, "Verification findings"),
      h("ul", {}, v.findings.map((f) => h("li", { testid: "finding" },
        f.tamper ? badge("tampered") : badge("note"), " ",
        f.seq !== null ? h("a", { href: "#/runs/" + enc(state.runId) + "?event=" + f.seq, testid: "finding-link", onclick: (e) => { e.preventDefault(); showEvents(state, Math.floor(f.seq / 100) * 100, f.seq); if (f.activation !== null) selectActivation(state, f.activation); } }, "event #" + f.seq) : "run",
        ": ", f.message))));
  }

  // ------------------------------------------------------------------ graph

  function layout(graph) {
    const names = graph.nodes.map((n) => n.name);
    const depth = Object.fromEntries(names.map((n) => [n, 0]));
    const entry = graph.entry_nodes.length ? graph.entry_nodes : names.slice(0, 1);
    const seen = new Set(entry); let frontier = entry.slice();
    while (frontier.length) {
      const next = [];
      for (const src of frontier) for (const [a, b] of graph.edges) if (a === src && !seen.has(b)) { seen.add(b); depth[b] = depth[a] + 1; next.push(b); }
      frontier = next;
    }
    const columns = {};
    for (const n of names) (columns[depth[n]] = columns[depth[n]] || []).push(n);
    const pos = {};
    for (const [d, col] of Object.entries(columns)) col.forEach((n, i) => { pos[n] = { x: 20 + Number(d) * 230, y: 20 + i * 70 }; });
    return pos;
  }

  function graphSvg(state) {
    const graph = state.detail.graph;
    if (!graph.nodes.length) return h("p", { class: "muted" }, "No graph recorded.");
    const pos = layout(graph);
    const W = 185, H = 44;
    const width = Math.max(...Object.values(pos).map((p) => p.x)) + W + 30;
    const height = Math.max(...Object.values(pos).map((p) => p.y)) + H + 30;
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "workload graph" },
      s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9ca3af" }))));
    for (const [a, b] of graph.edges) {
      if (!pos[a] || !pos[b]) continue;
      const p = pos[a], q = pos[b];
      const d = a === b ? `M${p.x + W / 2},${p.y} c 30,-30 60,-10 ${W / 2 - 2},10`
        : `M${p.x + W},${p.y + H / 2} C${p.x + W + 30},${p.y + H / 2} ${q.x - 30},${q.y + H / 2} ${q.x},${q.y + H / 2}`;
      svg.appendChild(s("path", { class: "edge", d }));
    }
    for (const n of graph.nodes) {
      const p = pos[n.name];
      const outcomes = Object.entries(n.outcomes || {}).map(([k, c]) => k + " " + c).join(", ");
      svg.appendChild(s("g", { class: "node " + n.status.replace(" ", "-"), testid: "graph-node", "data-node": n.name, "data-status": n.status, "data-activations": n.activations,
        onclick: () => { const first = state.acts.items.find((a) => a.node === n.name); if (first) selectActivation(state, first.index); } },
        s("title", {}, n.name + ": " + n.status + (outcomes ? " (" + outcomes + ")" : "")),
        s("rect", { x: p.x, y: p.y, width: W, height: H }),
        s("text", { x: p.x + 8, y: p.y + 18, "font-weight": 600 }, n.name.length > 20 ? n.name.slice(0, 19) + "…" : n.name),
        s("text", { x: p.x + 8, y: p.y + 35, fill: "#4b5563" }, n.activations + " activation" + (n.activations === 1 ? "" : "s") + " · " + n.status)));
    }
    return svg;
  }

  // ------------------------------------------------------------------ timeline

  function timelineSvg(state) {
    const acts = state.acts.items;
    if (!acts.length) return h("p", { class: "muted" }, "No activations yet.");
    const t0 = Math.min(...acts.map((a) => a.start_us));
    const now = Date.now() * 1000;
    const ends = acts.map((a) => a.end_us || (state.detail.run.status === "running" ? now : a.start_us));
    const t1 = Math.max(...ends, t0 + 1);
    const lanesEnd = []; const lane = [];
    acts.forEach((a, i) => {
      let l = lanesEnd.findIndex((end) => end <= a.start_us);
      if (l < 0) { l = lanesEnd.length; lanesEnd.push(0); }
      lanesEnd[l] = Math.max(ends[i], a.start_us + 1); lane.push(l);
    });
    const W = 640, left = 110, rowH = 22;
    const height = lanesEnd.length * rowH + 40;
    const x = (t) => left + ((t - t0) / (t1 - t0)) * (W - left - 10);
    const svg = s("svg", { width: W, height, viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": "timeline of activations" });
    for (let l = 0; l < lanesEnd.length; l++) svg.appendChild(s("text", { x: 4, y: 20 + l * rowH + 14, fill: "#6b7280" }, "lane " + (l + 1)));
    acts.forEach((a, i) => {
      const x0 = x(a.start_us), x1 = Math.max(x(ends[i]), x0 + 4), y = 20 + lane[i] * rowH;
      const g = s("g", { testid: "timeline-bar", "data-index": a.index, "data-node": a.node, "data-outcome": a.outcome, "data-lane": lane[i], "data-retries": a.retries },
        s("title", {}, `${a.node} on ${a.token_id}: ${a.outcome}` + (a.retries ? `, ${a.retries} retr${a.retries === 1 ? "y" : "ies"}` : "") + (a.timeouts ? `, ${a.timeouts} timeout(s)` : "") + (a.resumed ? ", resumed" : "")),
        s("rect", { class: "bar " + a.outcome + (state.selected === a.index ? " selected" : ""), x: x0, y, width: x1 - x0, height: rowH - 6, onclick: () => selectActivation(state, a.index) }),
        a.retries ? s("line", { class: "mark retry", x1: x0 + 2, x2: x0 + 2, y1: y - 2, y2: y + rowH - 4 }) : null,
        a.resumed ? s("line", { class: "mark resume", x1: x0, x2: x0, y1: y - 2, y2: y + rowH - 4 }) : null);
      svg.appendChild(g);
    });
    svg.appendChild(s("text", { x: left, y: height - 6, fill: "#6b7280" }, fmtMs((t1 - t0) / 1000) + " from first to last activation" + (state.acts.total > acts.length ? ` (first ${acts.length} of ${state.acts.total})` : "")));
    return svg;
  }

  // ------------------------------------------------------------------ activations

  function activationsTable(state) {
    const p = state.acts;
    const body = h("tbody", {}, p.items.map((a) => h("tr", { testid: "activation-row", "data-index": a.index, class: state.selected === a.index ? "selected" : null, onclick: () => selectActivation(state, a.index) },
      h("td", { class: "num" }, a.index), h("td", {}, a.node), h("td", { class: "mono" }, a.token_id),
      h("td", {}, badge(a.outcome), a.retries ? " ↻" + a.retries : "", a.resumed ? " (resumed)" : ""),
      h("td", { class: "num" }, a.end_us ? fmtMs((a.end_us - a.start_us) / 1000) : ""),
      h("td", { class: "num" }, a.llm_calls || ""), h("td", { class: "num" }, fmtCost(a.cost_usd)))));
    const pager = h("div", { class: "pager" }, h("span", {}, `${p.total ? p.offset + 1 : 0}–${p.offset + p.items.length} of ${p.total}`),
      p.offset > 0 ? h("button", { onclick: () => actsPage(state, p.offset - p.limit) }, "← earlier") : null,
      p.next_offset !== null ? h("button", { testid: "acts-next", onclick: () => actsPage(state, p.next_offset) }, "later →") : null);
    return h("div", { class: "panel", id: "acts" }, h("table", { testid: "activations" },
      h("thead", {}, h("tr", {}, ["#", "node", "token", "outcome", "took", "LLM", "cost"].map((t) => h("th", {}, t)))), body), pager);
  }

  async function actsPage(state, offset) {
    try { state.acts = await get(runPath(state.runId) + `/activations?offset=${offset}&limit=200`); } catch (err) { return; }
    const selected = state.selected;
    renderRun(state);
    if (selected !== null) selectActivation(state, selected);
  }

  async function selectActivation(state, index) {
    state.selected = index;
    document.querySelectorAll("[data-testid=activation-row]").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.index) === index));
    document.querySelectorAll("[data-testid=timeline-bar] rect").forEach((r) => r.classList.toggle("selected", Number(r.parentNode.dataset.index) === index));
    const panel = document.getElementById("panel");
    if (!panel) return;
    let a;
    try { a = await get(runPath(state.runId) + "/activations/" + index); } catch (err) {
      panel.replaceChildren(h("div", { class: "banner error" }, String(err.message))); return;
    }
    const code = a.code || {};
    const today = state.detail.code.nodes[a.node];
    fill(panel,
      h("div", { class: "kv", testid: "activation-detail", "data-index": a.index },
        h("span", { class: "k" }, "node"), h("b", { testid: "panel-node" }, a.node),
        h("span", { class: "k" }, "outcome"), h("span", {}, badge(a.outcome, "panel-outcome"), a.resumed ? " (resumed after approval)" : "", a.retries ? ` after ${a.retries} retr${a.retries === 1 ? "y" : "ies"}` : ""),
        h("span", { class: "k" }, "events"), h("span", {}, `#${a.start_seq} – #${a.end_seq === null ? "…" : a.end_seq}`),
        h("span", { class: "k" }, "took"), h("span", {}, a.end_us ? fmtMs((a.end_us - a.start_us) / 1000) : "still running"),
        h("span", { class: "k" }, "code identity"), h("span", { testid: "panel-code" }, h("code", {}, String(code.id || "?").slice(0, 16) + "…"), " code ", h("code", {}, String(code.code_hash || "?").slice(0, 16) + "…"), " ",
          today && today.today ? badge(today.today === "same" ? "same" : today.today, "code-today") : h("span", { class: "muted" }, "(today's code not loaded)"))),
      h("h3", {}, "Input token"),
      a.input ? h("div", { testid: "panel-input" }, tokenLink(state, a.input.token_id), a.input.from ? " from " + a.input.from : "", value(a.input.payload)) : h("p", { class: "muted" }, "none"),
      a.interrupt ? [h("h3", {}, "Interrupt"), h("div", { testid: "panel-interrupt" }, h("b", {}, a.interrupt.reason), value(a.interrupt.payload))] : null,
      h("h3", {}, "Returned"), h("div", { testid: "panel-result" }, a.outcome === "completed" ? value(a.result) : h("span", { class: "muted" }, "nothing (" + a.outcome + ")")),
      a.error ? [h("h3", {}, "Error"), h("div", { class: "banner error", testid: "panel-error" }, (a.error.error_type || "") + ": " + (a.error.message || ""), a.error.timeout ? " (timeout)" : "")] : null,
      a.retries_detail.length ? [h("h3", {}, "Retries"), h("ul", {}, a.retries_detail.map((r) => h("li", {}, `#${r.seq} attempt ${r.attempt}: ${r.error_type}: ${r.message}` + (r.timeout ? " (timeout)" : ""))))] : null,
      h("h3", {}, "Emitted tokens (" + a.emitted.length + ")"),
      a.emitted.length ? h("ul", { testid: "panel-emitted" }, a.emitted.map((e) => h("li", {}, tokenLink(state, e.token_id), " → " + e.target, value(e.payload)))) : h("p", { class: "muted" }, "none"),
      a.state.length ? [h("h3", {}, "State changes"), h("div", { testid: "panel-state" }, a.state.map((c) => value(c.change)))] : null,
      a.llm.length ? [h("h3", {}, "LLM calls"), a.llm.map((c) => llmCall(c))] : null,
      a.effects.length ? [h("h3", {}, "Recorded effects"), h("ul", {}, a.effects.map((e) => h("li", {}, `#${e.seq} ${e.name || "effect"}`)))] : null,
      a.custom.length ? [h("h3", {}, "Custom events"), h("ul", { testid: "panel-custom" }, a.custom.map((c) => h("li", {}, `#${c.seq} `, h("b", {}, c.type), value(c.metadata))))] : null);
  }

  function llmCall(c) {
    return h("div", { class: "panel", testid: "llm-call" },
      h("div", { class: "kv" },
        h("span", { class: "k" }, "model"), h("b", { testid: "llm-model" }, c.model || "?"),
        h("span", { class: "k" }, "tokens"), h("span", { testid: "llm-tokens" }, `${c.input_tokens ?? "?"} in / ${c.output_tokens ?? "?"} out`),
        h("span", { class: "k" }, "cost"), h("span", { testid: "llm-cost" }, fmtCost(c.cost_usd) || "unknown (no price)"),
        h("span", { class: "k" }, "latency"), h("span", {}, c.latency_ms === null ? "?" : fmtMs(c.latency_ms) + " (since the activation's previous event)")),
      h("div", { class: "muted" }, "prompt"),
      h("div", { testid: "llm-prompt" }, c.prompt.map((m) => h("div", { class: "msg" }, h("div", { class: "role" }, m.role), value(m.content)))),
      h("div", { class: "muted" }, "answer"), h("div", { testid: "llm-answer" }, value(c.answer)));
  }

  function tokenLink(state, tokenId) {
    return h("a", { href: "#", class: "mono", testid: "token-link", "data-token": tokenId, onclick: (e) => { e.preventDefault(); showLineage(state, tokenId); } }, tokenId);
  }

  async function showLineage(state, tokenId) {
    const box = document.getElementById("lineage");
    let t;
    try { t = await get(runPath(state.runId) + "/tokens/" + enc(tokenId)); } catch (err) { fill(box, h("div", { class: "banner error" }, String(err.message))); return; }
    const actLink = (a) => h("a", { href: "#", testid: "lineage-activation", onclick: (e) => { e.preventDefault(); selectActivation(state, a.index); } }, `#${a.index} ${a.node} (${a.outcome})`);
    fill(box, h("div", { class: "kv", testid: "lineage-detail", "data-token": t.token_id },
      h("span", { class: "k" }, "token"), h("b", { class: "mono" }, t.token_id),
      h("span", { class: "k" }, "emitted by"), h("span", { testid: "lineage-emitter" }, t.emitted_by ? actLink(t.emitted_by) : (t.source || "the run's input")),
      h("span", { class: "k" }, "sent to"), h("span", {}, t.target || "?"),
      h("span", { class: "k" }, "caused"), h("span", { testid: "lineage-caused" }, t.consumed_by.length ? t.consumed_by.map((a) => [actLink(a), " "]) : "nothing yet"),
      h("span", { class: "k" }, "which emitted"), h("span", {}, t.children.length ? t.children.map((c) => [tokenLink(state, c), " "]) : "no token")),
      value(t.payload));
  }

  // ------------------------------------------------------------------ approvals, identity, events

  function approvals(detail) {
    if (!detail.approvals.length && !detail.interrupts.length) return h("p", { class: "muted", testid: "approvals" }, "No interrupts in this run.");
    const answered = new Set(detail.approvals.map((a) => a.asked_seq));
    return h("table", { testid: "approvals" },
      h("thead", {}, h("tr", {}, ["asked", "node", "question", "what was shown", "approver", "answer", "when"].map((t) => h("th", {}, t)))),
      h("tbody", {},
        detail.approvals.map((a) => h("tr", { testid: "approval-row" }, h("td", {}, "#" + (a.asked_seq ?? "?")), h("td", {}, a.node || ""), h("td", {}, a.question || ""),
          h("td", {}, value(a.asked_payload)), h("td", { testid: "approver" }, a.actor || "(not recorded)"), h("td", {}, value(a.input)), h("td", {}, fmtUs(a.ts)))),
        detail.interrupts.filter((i) => !answered.has(i.seq)).map((i) => h("tr", { testid: "interrupt-row" }, h("td", {}, "#" + i.seq), h("td", {}, i.node || ""), h("td", {}, i.reason || ""),
          h("td", {}, value(i.payload)), h("td", {}, "—"), h("td", {}, badge("awaiting")), h("td", {}, fmtUs(i.ts))))));
  }

  function identity(detail) {
    const c = detail.code;
    return h("div", { class: "panel", testid: "identity" },
      h("div", {}, "logic id ", h("code", {}, c.logic_id || "?"), c.compared_with_today ? [" · today ", h("code", {}, c.today_logic_id), " ", badge(c.today_logic_id === c.logic_id ? "same" : "changed")] : h("span", { class: "muted" }, " (start codon ui with --workload to compare with today's code)")),
      h("table", {}, h("thead", {}, h("tr", {}, ["node", "role", "node id", "code hash", "today"].map((t) => h("th", {}, t)))),
        h("tbody", {}, Object.entries(c.nodes).map(([n, x]) => h("tr", {}, h("td", {}, n), h("td", {}, x.role || ""), h("td", { class: "mono" }, String(x.node_id || "").slice(0, 16)), h("td", { class: "mono" }, String(x.code_hash || "").slice(0, 16)),
          h("td", {}, x.today ? badge(x.today) : "—"))))));
  }

  async function showEvents(state, offset, highlight, kind) {
    const box = document.getElementById("events");
    if (!box) return;
    const q = `offset=${offset}&limit=100` + (kind ? "&type=" + enc(kind) : "");
    let p;
    try { p = await get(runPath(state.runId) + "/events?" + q); } catch (err) { fill(box, h("div", { class: "banner error" }, String(err.message))); return; }
    const rows = p.items.map((e) => h("tr", { testid: "event-row", id: "event-" + e.seq, "data-seq": e.seq, class: e.seq === highlight ? "highlight" : null },
      h("td", { class: "num" }, e.seq), h("td", {}, e.unreadable ? badge("unreadable") : e.custom ? h("span", {}, badge("custom"), " ", e.type) : e.type),
      h("td", {}, e.node || "", e.target ? " → " + e.target : ""), h("td", { class: "mono" }, e.token_id || ""), h("td", {}, e.actor || ""),
      h("td", {}, e.unreadable ? e.unreadable : (e.payload !== undefined ? value(e.payload) : e.metadata ? value(e.metadata) : ""),
        !REPORT ? h("a", { href: runPath(state.runId) + "/events/" + e.seq, target: "_blank", rel: "noopener" }, "whole event") : null)));
    fill(box, h("table", {}, h("thead", {}, h("tr", {}, ["seq", "type", "node", "token", "actor", "data"].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
      h("div", { class: "pager" }, h("span", {}, `${p.total ? p.offset + 1 : 0}–${p.offset + p.items.length} of ${p.total}`),
        p.offset > 0 ? h("button", { onclick: () => showEvents(state, Math.max(0, p.offset - 100), null, kind) }, "← earlier") : null,
        p.next_offset !== null ? h("button", { testid: "events-next", onclick: () => showEvents(state, p.next_offset, null, kind) }, "later →") : null));
    if (highlight !== null && highlight !== undefined) { const row = document.getElementById("event-" + highlight); if (row) row.scrollIntoView({ block: "center" }); }
  }

  // ------------------------------------------------------------------ compare

  async function comparePage(left, right) {
    if (!left || !right) return showError(new Error("compare needs two run ids"), "Cannot compare");
    let c;
    fill(app, h("p", { class: "muted" }, "Comparing…"));
    try { c = await get("/api/compare?left=" + enc(left) + "&right=" + enc(right)); } catch (err) { return showError(err, "Cannot compare"); }
    renderCompare(c, "Compare runs");
  }

  async function replayPage(runId) {
    let c;
    fill(app, h("p", { class: "muted" }, "Replaying with today's code…"));
    try { c = await get(runPath(runId) + "/replay"); } catch (err) { return showError(err, "Cannot replay " + runId); }
    renderCompare(c, "Run and its replay with today's code");
  }

  function renderCompare(c, title) {
    const d = c.first_divergence;
    const logic = c.logic;
    const side = (x, which) => h("div", { class: "side", testid: "compare-" + which },
      h("h2", {}, which === "left" ? "Recorded " : (c.kind === "replay" ? "Replay " : "Other "), h("span", { class: "mono" }, x.run_id), " ", badge(x.status || "?"), x.verification ? [" ", badge(x.verification)] : null),
      h("table", {}, h("thead", {}, h("tr", {}, ["#", "node", "input", "returned", "emitted"].map((t) => h("th", {}, t)))),
        h("tbody", {}, x.activations.map((a, i) => h("tr", { testid: "compare-row", class: d && d.index === i ? "highlight" : null, "data-diverged": d && d.index === i ? "yes" : null },
          h("td", {}, i), h("td", {}, a.node), h("td", {}, value(a.input)), h("td", {}, value(a.result)), h("td", {}, value(a.emitted)))))),
      x.activation_count > x.activations.length ? h("p", { class: "muted" }, `first ${x.activations.length} of ${x.activation_count} activations`) : null);
    fill(app, h("h1", {}, title),
      h("div", { class: logic.changed ? "banner warn" : "muted", testid: "logic-change" },
        logic.changed ? ["Logic id changed: ", h("code", {}, String(logic.left).slice(0, 16)), " → ", h("code", {}, String(logic.right).slice(0, 16)),
          "; changed nodes: " + (logic.changed_nodes.join(", ") || "none"), logic.added_nodes && logic.added_nodes.length ? "; added: " + logic.added_nodes.join(", ") : "",
          logic.removed_nodes && logic.removed_nodes.length ? "; removed: " + logic.removed_nodes.join(", ") : ""] : "Logic id unchanged: " + logic.left),
      d ? h("div", { class: "banner warn", testid: "first-divergence" }, "First divergent decision: activation #" + d.index + " (" + (d.node || "?") + "): " + d.what + (d.text ? " — " + d.text : ""))
        : h("div", { class: "banner", testid: "first-divergence" }, "No divergent decision: the runs decided the same."),
      h("div", { class: "grid" }, side(c.left, "left"), side(c.right, "right")),
      h("p", {}, h("a", { href: "#/runs/" + enc(c.left.run_id) }, "Back to run " + c.left.run_id)));
  }

  route();
})();
