// The pages' own script (no library, nothing inline: the Content-Security-Policy allows neither).
// - times: <time datetime> shown in the reader's time zone, the exact UTC time on hover
// - the lineage explorer: zoom, pan, fit and centre on the subject; expand and collapse a node's
//   neighbours; direction, depth, logs & code, grouping and expanded nodes kept in the URL; the as-of
//   slider snaps to version events and, with the date box, reloads the page as of that time
// - sortable tables, the print button
// Fragments from the server are parsed as documents and moved in; no markup is built from strings.
"use strict";

function pad(n) { return String(n).padStart(2, "0"); }
function localText(d) {
  const zone = (Intl.DateTimeFormat().resolvedOptions().timeZone || "local");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} (${zone})`;
}
function localInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function zoneName(d) {
  const part = new Intl.DateTimeFormat(undefined, {timeZoneName: "short"}).formatToParts(d)
    .find((p) => p.type === "timeZoneName");
  return part ? part.value : "local";
}
function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    t.textContent = localText(d);
    t.title = "UTC " + t.getAttribute("datetime");
    t.classList.add("local");
  }
  // the graph's run times (SVG text, to the minute): in the reader's zone too, its short name said
  for (const t of root.querySelectorAll("tspan.when[data-ts]")) {
    const d = new Date(t.dataset.ts);
    if (isNaN(d)) continue;
    t.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())} ${zoneName(d)}`;
    t.classList.add("local");
  }
}

// -- the explorer -------------------------------------------------------------------------------
const view = {x: 0, y: 0, w: 0, h: 0};
function svgOf() { return document.querySelector("#graph svg.lineage:not(.slice)"); }
function applyView() {
  const svg = svgOf();
  if (!svg) return;
  svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  const g = document.getElementById("graph");
  g.dataset.view = [view.x, view.y, view.w, view.h].map((v) => Math.round(v)).join(",");
  g.dataset.scale = String(Math.round(1000 * (svg.clientWidth / view.w)) / 1000);
}
function boxSize() {
  const svg = svgOf();
  return {w: svg.clientWidth || 800, h: svg.clientHeight || 500};
}
function fitView() {
  const svg = svgOf();
  if (!svg) return;
  const W = Number(svg.dataset.width), H = Number(svg.dataset.height), box = boxSize();
  const s = Math.min(box.w / W, box.h / H);
  view.w = box.w / s; view.h = box.h / s;
  view.x = (W - view.w) / 2; view.y = (H - view.h) / 2;
  applyView();
}
function centreView(scale) {
  const svg = svgOf();
  if (!svg || !svg.dataset.cx) return fitView();
  const W = Number(svg.dataset.width), H = Number(svg.dataset.height), box = boxSize();
  view.w = box.w / scale; view.h = box.h / scale;
  view.x = Number(svg.dataset.cx) - view.w / 2; view.y = Number(svg.dataset.cy) - view.h / 2;
  // no empty margin where the graph goes on: the subject stays in view, nearer the side it ends on
  if (view.w < W) view.x = Math.min(Math.max(view.x, 0), W - view.w); else view.x = (W - view.w) / 2;
  if (view.h < H) view.y = Math.min(Math.max(view.y, 0), H - view.h); else view.y = (H - view.h) / 2;
  applyView();
}
function sizeSvg(svg) {
  // as wide as the page allows, as tall as the graph needs at full size (within bounds); the legend below
  const H = Number(svg.dataset.height);
  svg.setAttribute("width", "100%");
  svg.setAttribute("height", String(Math.round(Math.max(220, Math.min(window.innerWidth <= 800 ? 380 : 560, H + 40)))));
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
}
function initialView() {
  const svg = svgOf();
  if (!svg) return;
  sizeSvg(svg);
  const W = Number(svg.dataset.width), H = Number(svg.dataset.height), box = boxSize();
  // the whole graph when its text stays readable at that size; else the subject at full size, centred
  if (Math.min(box.w / W, box.h / H) >= 0.6) fitView(); else centreView(1);
}
function zoom(factor, cx, cy) {
  if (!svgOf()) return;
  const px = cx === undefined ? view.x + view.w / 2 : cx, py = cy === undefined ? view.y + view.h / 2 : cy;
  const w = Math.min(Math.max(view.w / factor, 80), 40000), h = view.h * (w / view.w);
  view.x = px - (px - view.x) * (w / view.w); view.y = py - (py - view.y) * (h / view.h);
  view.w = w; view.h = h;
  applyView();
}
function toPoint(evt) {
  const svg = svgOf(), r = svg.getBoundingClientRect();
  const s = Math.min(r.width / view.w, r.height / view.h);
  const ox = (r.width - view.w * s) / 2, oy = (r.height - view.h * s) / 2;
  return {x: view.x + (evt.clientX - r.left - ox) / s, y: view.y + (evt.clientY - r.top - oy) / s, s};
}

let drag = null;
function installPanZoom(graph) {
  graph.addEventListener("wheel", (e) => {
    if (!svgOf()) return;
    e.preventDefault();
    const p = toPoint(e);
    zoom(e.deltaY < 0 ? 1.2 : 1 / 1.2, p.x, p.y);
  }, {passive: false});
  graph.addEventListener("pointerdown", (e) => {
    if (!svgOf() || e.button !== 0 || e.target.closest(".toggle")) return;
    drag = {x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false, s: toPoint(e).s};
  });
  window.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (!drag.moved) return;
    view.x = drag.vx - dx / drag.s; view.y = drag.vy - dy / drag.s;
    applyView();
  });
  window.addEventListener("pointerup", () => {
    if (drag && drag.moved) graph.dataset.dragged = "1";
    drag = null;
  });
  graph.addEventListener("click", (e) => {
    if (graph.dataset.dragged === "1") { e.preventDefault(); delete graph.dataset.dragged; return; }
    const t = e.target.closest(".toggle");
    if (t) { e.preventDefault(); toggleNode(t.dataset.node); }
  }, true);
  graph.addEventListener("keydown", (e) => {
    const t = e.target.closest && e.target.closest(".toggle");
    if (t && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); toggleNode(t.dataset.node); return; }
    const step = view.w / 10;
    if (e.key === "+" || e.key === "=") zoom(1.2);
    else if (e.key === "-") zoom(1 / 1.2);
    else if (e.key === "ArrowLeft") { view.x -= step; applyView(); }
    else if (e.key === "ArrowRight") { view.x += step; applyView(); }
    else if (e.key === "ArrowUp") { view.y -= step; applyView(); }
    else if (e.key === "ArrowDown") { view.y += step; applyView(); }
    else return;
    e.preventDefault();
  });
}

function formParams(form) {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== "") params.append(k, v);
  return params;
}
function depthOk(form) {
  const input = form.querySelector("input[name=depth]");
  const n = Number(input.value);
  const ok = input.value !== "" && Number.isInteger(n) && n >= 1 && n <= 20;
  input.classList.toggle("invalid", !ok);
  input.setCustomValidity(ok ? "" : "depth must be a whole number from 1 to 20");
  const msg = document.getElementById("depth-msg");
  if (msg) msg.textContent = ok ? "" : "depth must be a whole number from 1 to 20";
  return ok;
}
function carry(params) {
  // the report links carry the view's time and depth
  for (const a of document.querySelectorAll("a[data-carry=report]")) {
    const u = new URL(a.href, location.href);
    for (const k of ["as_of", "depth"]) { if (params.get(k)) u.searchParams.set(k, params.get(k)); else u.searchParams.delete(k); }
    a.href = u.pathname + "?" + u.searchParams.toString();
  }
  // the exports carry the view's time, depth and direction (their own defaults differ: say them)
  for (const a of document.querySelectorAll("a[data-carry=export]")) {
    const u = new URL(a.href, location.href);
    for (const k of ["as_of", "depth", "direction"]) {
      const v = params.get(k) || {depth: "3", direction: "both"}[k];
      if (v) u.searchParams.set(k, v); else u.searchParams.delete(k);
    }
    a.href = u.pathname + "?" + u.searchParams.toString();
  }
}
function redraw(keepView) {
  const form = document.getElementById("gctl");
  if (!form || !depthOk(form)) return;
  const params = formParams(form);
  history.replaceState(null, "", "/ui/artifact?" + params.toString());
  carry(params);
  const graph = document.getElementById("graph");
  graph.setAttribute("aria-busy", "true");
  fetch("/ui/graph?" + params.toString(), {credentials: "same-origin", redirect: "manual"})
    .then((r) => {
      // signed out meanwhile: to the sign-in page, back to this view after it (never the sign-in page drawn
      // inside the graph)
      if (r.status === 401 || r.redirected || r.type === "opaqueredirect") {
        location.assign("/ui/login?" + new URLSearchParams({next: location.pathname + location.search}).toString());
        return Promise.reject(new Error("signed out"));
      }
      const type = r.headers.get("content-type") || "";
      if (!r.ok || !type.startsWith("text/html")) {
        return r.text().then((t) => Promise.reject(new Error(r.ok ? "unexpected answer" : t.slice(0, 300) || ("HTTP " + r.status))));
      }
      return r.text();
    })
    .then((text) => {
      const doc = new DOMParser().parseFromString(text, "text/html");
      const saved = {...view};
      const old = document.getElementById("graph-error");
      if (old) old.remove();
      graph.replaceChildren(...doc.body.childNodes);
      localTimes(graph);
      if (keepView && saved.w && svgOf()) { Object.assign(view, saved); sizeSvg(svgOf()); applyView(); }
      else initialView();
      graph.dataset.state = params.toString();
      graph.removeAttribute("aria-busy");
    })
    .catch((err) => {
      graph.removeAttribute("aria-busy");
      if (err && err.message === "signed out") return;
      let note = document.getElementById("graph-error");
      if (!note) {
        note = document.createElement("p");
        note.id = "graph-error"; note.className = "field-error"; note.setAttribute("role", "alert");
        graph.before(note);
      }
      note.textContent = "The graph could not be redrawn: " + (err && err.message ? err.message : "no answer");
    });
}
function toggleNode(id) {
  const form = document.getElementById("gctl");
  const existing = [...form.querySelectorAll("input[name=expand]")].find((i) => i.value === id);
  if (existing) existing.remove();
  else {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = "expand"; input.value = id;
    form.appendChild(input);
  }
  redraw(true);
}

function installTimeTravel(form) {
  const slider = document.getElementById("asof");
  const box = document.getElementById("asof-date");
  const value = document.getElementById("asof-value");
  const label = document.getElementById("asof-label");
  if (!slider) return;
  const marks = (slider.dataset.marks || "").split(",").filter((s) => s).map(Number);
  function at(i) { return i >= marks.length ? null : marks[i]; }
  function show(ms) {
    if (ms === null) { label.textContent = "now"; value.value = ""; box.value = ""; return; }
    const d = new Date(ms);
    label.textContent = localText(d);
    label.title = "UTC " + d.toISOString();
    value.value = d.toISOString();
    box.value = localInput(d);
  }
  if (value.value) { const d = new Date(value.value); box.value = localInput(d); label.textContent = localText(d); label.title = "UTC " + d.toISOString(); }
  slider.addEventListener("input", () => show(at(Number(slider.value))));
  slider.addEventListener("change", () => { show(at(Number(slider.value))); if (depthOk(form)) form.submit(); });
  box.addEventListener("change", () => {
    if (!box.value) return;
    const d = new Date(box.value);  // a datetime-local value is the reader's local time
    if (isNaN(d)) return;
    value.value = d.toISOString();
    if (depthOk(form)) form.submit();
  });
}

function installExplorer() {
  const form = document.getElementById("gctl");
  const graph = document.getElementById("graph");
  if (!form || !graph) return;
  const depth = form.querySelector("input[name=depth]");
  const msg = document.createElement("span");
  msg.id = "depth-msg"; msg.className = "field-error"; msg.setAttribute("role", "alert");
  depth.closest("label").after(msg);
  form.addEventListener("change", (e) => {
    if (e.target.closest(".timetravel")) return;
    redraw(false);
  });
  depth.addEventListener("input", () => depthOk(form));
  form.addEventListener("submit", (e) => { if (!depthOk(form)) e.preventDefault(); });
  document.getElementById("zoom-in").addEventListener("click", () => zoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(1 / 1.25));
  document.getElementById("fit").addEventListener("click", fitView);
  document.getElementById("centre").addEventListener("click", () => centreView(1));
  installPanZoom(graph);
  installTimeTravel(form);
  initialView();
  graph.dataset.state = formParams(form).toString();
}

// -- tables and printing ------------------------------------------------------------------------
function installSorting() {
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.querySelectorAll("thead th");
    heads.forEach((th, i) => {
      th.tabIndex = 0;
      th.classList.add("sort-head");
      const sort = () => {
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        heads.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = [...body.rows].filter((r) => r.cells.length === heads.length);
        const num = th.dataset.type === "num";
        rows.sort((a, b) => {
          const x = a.cells[i].textContent.trim(), y = b.cells[i].textContent.trim();
          return dir * (num ? Number(x) - Number(y) : x.localeCompare(y, undefined, {numeric: true}));
        });
        body.append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  installExplorer();
  installSorting();
  // a report's picture, wider than the page, starts with its subject in view
  for (const box of document.querySelectorAll(".report-graph")) {
    const svg = box.querySelector("svg.lineage:not(.slice)");
    if (svg && svg.dataset.cx && box.scrollWidth > box.clientWidth) {
      const scale = svg.getBoundingClientRect().width / Number(svg.dataset.width);
      box.scrollLeft = Math.max(0, Number(svg.dataset.cx) * scale - box.clientWidth / 2);
    }
  }
  const print = document.getElementById("print");
  if (print) print.addEventListener("click", () => window.print());
});
