// The supervisor's reports page: the intervals API as tables and charts, and a replay's CSV opened
// from disk (read in the browser, never uploaded).
const t = (msgid) => (typeof window.gettext === "function" ? window.gettext(msgid) : msgid);
const $ = (id) => document.getElementById(id);
const API = "/api/v1/reports/intervals";
const charts = {};
const MAIN_INTERVALS = ["call_to_notified", "notified_to_en_route", "call_to_on_scene"];

function minutes(seconds) {
  if (seconds === null || seconds === undefined || seconds === "" || Number.isNaN(Number(seconds))) return "–";
  const value = Number(seconds);
  return value < 120 ? `${Math.round(value)} s` : `${(value / 60).toFixed(1)} min`;
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function query() {
  const params = new URLSearchParams();
  params.set("from", new Date($("from").value).toISOString());
  params.set("to", new Date($("to").value).toISOString());
  return params;
}

function cell(row, text, header = false) {
  const el = document.createElement(header ? "th" : "td");
  el.textContent = text;
  if (header) el.scope = "col";
  row.append(el);
  return el;
}

// One row per group; for each main interval its count, p50 and p90.
function intervalTable(container, rows, intervals, keyLabel, keyText = (k) => k) {
  container.replaceChildren();
  if (!rows.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = t("No cases in this window.");
    container.append(empty);
    return;
  }
  const byKey = new Map();
  for (const row of rows) {
    if (!byKey.has(row.key)) byKey.set(row.key, {});
    byKey.get(row.key)[row.interval] = row;
  }
  const table = document.createElement("table");
  table.className = "report-table";
  const head = table.createTHead();
  const top = head.insertRow();
  cell(top, keyLabel, true).rowSpan = 2;
  const sub = head.insertRow();
  for (const name of MAIN_INTERVALS) {
    const spec = intervals.find((i) => i.name === name);
    const th = cell(top, `${t(spec.label)} (${spec.start}→${spec.end})`, true);
    th.colSpan = 3;
    for (const label of [t("cases"), "p50", "p90"]) cell(sub, label, true);
  }
  const body = table.createTBody();
  for (const [key, values] of byKey) {
    const tr = body.insertRow();
    cell(tr, keyText(key));
    for (const name of MAIN_INTERVALS) {
      const v = values[name];
      cell(tr, v ? String(v.count) : "0");
      cell(tr, v ? minutes(v.p50_s) : "–");
      cell(tr, v ? minutes(v.p90_s) : "–");
    }
  }
  container.append(table);
}

function draw(id, config) {
  if (!window.Chart) return;  // the chart library failed to load: the tables still tell it
  if (charts[id]) charts[id].destroy();
  config.options = {
    responsive: true, maintainAspectRatio: false, animation: false,
    scales: { y: { beginAtZero: true, title: { display: true, text: t("minutes") } } },
    ...config.options,
  };
  charts[id] = new window.Chart($(id), config);
}

function series(rows, interval, field) {
  return (key) => {
    const row = rows.find((r) => String(r.key) === String(key) && r.interval === interval);
    return row && row[field] !== null ? Number(row[field]) / 60 : null;
  };
}

const priorityText = (k) => `${t("Priority")} ${k}`;

function render(data) {
  $("status").textContent = `${data.cases} ${t("cases")}`;
  intervalTable($("table-priority"), data.by_priority, data.intervals, t("Priority"), priorityText);
  intervalTable($("table-hour"), data.by_hour, data.intervals, t("Hour"), (k) => `${String(k).padStart(2, "0")}:00`);
  intervalTable($("table-district"), data.by_district, data.intervals, t("District"));
  const priorities = [...new Set(data.by_priority.map((r) => r.key))];
  draw("chart-priority", {
    type: "bar",
    data: {
      labels: priorities.map(priorityText),
      datasets: [
        { label: `${t("Tap → unit notified")} p90`, data: priorities.map(series(data.by_priority, "call_to_notified", "p90_s")), backgroundColor: "#c62828" },
        { label: `${t("Tap → on scene")} p90`, data: priorities.map(series(data.by_priority, "call_to_on_scene", "p90_s")), backgroundColor: "#1565c0" },
      ],
    },
  });
  const hours = [...Array(24).keys()];
  draw("chart-hour", {
    type: "line",
    data: {
      labels: hours.map((h) => `${String(h).padStart(2, "0")}:00`),
      datasets: [
        { label: `${t("Tap → unit notified")} p50`, data: hours.map(series(data.by_hour, "call_to_notified", "p50_s")), borderColor: "#ef6c00", spanGaps: true },
        { label: `${t("Tap → unit notified")} p90`, data: hours.map(series(data.by_hour, "call_to_notified", "p90_s")), borderColor: "#c62828", spanGaps: true },
      ],
    },
  });
  const districts = [...new Set(data.by_district.map((r) => r.key))];
  draw("chart-district", {
    type: "bar",
    data: {
      labels: districts,
      datasets: [
        { label: `${t("Tap → on scene")} p50`, data: districts.map(series(data.by_district, "call_to_on_scene", "p50_s")), backgroundColor: "#90caf9" },
        { label: `${t("Tap → on scene")} p90`, data: districts.map(series(data.by_district, "call_to_on_scene", "p90_s")), backgroundColor: "#1565c0" },
      ],
    },
  });
}

async function load(event) {
  if (event) event.preventDefault();
  $("error").hidden = true;
  $("status").textContent = t("Loading…");
  const params = query();
  const csv = new URLSearchParams(params);
  csv.set("format", "csv");
  $("csv-link").href = `${API}?${csv}`;
  try {
    const response = await fetch(`${API}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(Object.values(body).flat().join(" ") || response.statusText);
    render(body);
  } catch (error) {
    $("status").textContent = "";
    $("error").textContent = `${t("Could not load the report:")} ${error.message}`;
    $("error").hidden = false;
  }
}

// A minimal CSV reader for the replay's own file (quoted fields allowed).
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  const [header, ...body] = rows.filter((r) => r.length > 1);
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

const REPLAY_COLUMNS = [
  ["cases", "Cases needing a unit", (v) => v],
  ["notified_p50_s", "Tap → unit notified p50", minutes],
  ["notified_p90_s", "Tap → unit notified p90", minutes],
  ["en_route_p90_s", "Notified → en route p90", minutes],
  ["on_scene_p50_s", "Tap → on scene p50", minutes],
  ["on_scene_p90_s", "Tap → on scene p90", minutes],
  ["notified_within_30s_share", "Notified within 30 s", (v) => (v === "" ? "–" : `${(Number(v) * 100).toFixed(1)} %`)],
  ["longest_wait_s", "Longest wait for a unit", minutes],
  ["never_notified", "Never notified", (v) => v],
];

function renderReplay(rows, name) {
  if (!rows.length || !("policy" in rows[0]) || !("priority" in rows[0])) {
    throw new Error(t("This is not a replay CSV (it needs the columns policy and priority)."));
  }
  const policies = [...new Set(rows.map((r) => r.policy))];
  const priorities = [...new Set(rows.map((r) => r.priority))].sort();
  const p1 = policies.map((p) => {
    const r = rows.find((x) => x.policy === p && x.priority === "1");
    return r ? `${p}: ${(Number(r.notified_within_30s_share) * 100).toFixed(1)} %` : `${p}: –`;
  });
  $("replay-headline").textContent = `${name} · ${rows[0].scenario} · ${t("priority 1 notified within 30 s")}: ${p1.join(" · ")}`;
  const table = document.createElement("table");
  table.className = "report-table";
  const head = table.createTHead();
  const top = head.insertRow();
  cell(top, t("Measure"), true).rowSpan = 2;
  const sub = head.insertRow();
  for (const priority of priorities) {
    cell(top, priorityText(priority), true).colSpan = policies.length;
    for (const policy of policies) cell(sub, policy, true);
  }
  const body = table.createTBody();
  for (const [key, label, format] of REPLAY_COLUMNS) {
    const tr = body.insertRow();
    cell(tr, t(label));
    for (const priority of priorities) {
      for (const policy of policies) {
        const r = rows.find((x) => x.policy === policy && x.priority === priority);
        const td = cell(tr, r ? format(r[key]) : "–");
        if (key === "notified_within_30s_share" && priority === "1" && r) td.className = Number(r[key]) >= 0.95 ? "meets" : "misses";
      }
    }
  }
  $("table-replay").replaceChildren(table);
  const colours = ["#2e7d32", "#757575", "#1565c0", "#ef6c00"];
  draw("chart-replay", {
    type: "bar",
    data: {
      labels: priorities.map(priorityText),
      datasets: policies.map((policy, i) => ({
        label: `${policy}: ${t("Tap → unit notified")} p90`,
        data: priorities.map((p) => {
          const r = rows.find((x) => x.policy === policy && x.priority === p);
          return r && r.notified_p90_s !== "" ? Number(r.notified_p90_s) / 60 : null;
        }),
        backgroundColor: colours[i % colours.length],
      })),
    },
  });
  $("replay").hidden = false;
}

async function openReplay() {
  const file = $("replay-file").files[0];
  if (!file) return;
  $("error").hidden = true;
  try {
    renderReplay(parseCsv(await file.text()), file.name);
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

function start() {
  const now = new Date();
  $("to").value = localInput(now);
  $("from").value = localInput(new Date(now.getTime() - 24 * 3600 * 1000));
  $("filters").addEventListener("submit", load);
  $("replay-file").addEventListener("change", openReplay);
  load();
}

start();
