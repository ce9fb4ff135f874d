// The facezoo page. Server mode sends each photo to /v1/analyze; "analyse in this browser" runs
// the same models on this computer with facezoo.js (web/facezoo.js, onnxruntime-web) and uploads
// nothing. Both show the photo with numbered face boxes and captions laid out so that none hides
// another, and a table row per face. A page written by `facezoo export-web` is browser-only
// (<meta name="facezoo-mode" content="browser">).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = {
  token: sessionStorage.getItem("facezoo-token") || "",
  limits: null,
  browserOnly: document.querySelector('meta[name="facezoo-mode"]').content === "browser",
  manifest: null,
  analyzers: new Map(),
};

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attributes = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

async function api(path, options = {}) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (error) {
    throw new Error("the server cannot be reached (" + error.message + ")");
  }
  const json = (response.headers.get("content-type") || "").includes("application/json");
  const body = json ? await response.json() : null;
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const error = new Error((body && body.detail) || response.status + " " + response.statusText);
    error.status = response.status;
    if (retry) error.message += " (retry in " + retry + " s)";
    throw error;
  }
  return body;
}

function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
}

function inBrowser() {
  return document.getElementById("in-browser").checked;
}

function showTasks(models) {
  const fieldset = document.getElementById("tasks");
  fieldset.querySelectorAll("label").forEach((label) => label.remove());
  const detector = models.length ? models[0].detector : null;
  for (const model of models) {
    const label = element("label", { title: model.model + " (faces found by " + model.detector + ")" });
    const box = element("input", { type: "checkbox", name: "task", value: model.task });
    box.checked = model.detector === detector; // one analysis runs one detector
    label.append(box, " " + model.task);
    fieldset.append(label);
  }
}

// What the in-browser mode can run: the manifest of web/ (the server's models, or an export's).
async function loadManifest() {
  const status = document.getElementById("browser-status");
  const toggle = document.getElementById("in-browser");
  try {
    const response = await fetch("web/manifest.json", { headers: state.token ? { Authorization: "Bearer " + state.token } : {} });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    state.manifest = await response.json();
  } catch (error) {
    state.manifest = null;
    status.textContent = "in-browser mode unavailable: no web/manifest.json (" + error.message + ")";
  }
  const m = state.manifest;
  const usable = m && !m.runtime_missing && m.models.length && typeof facezoo !== "undefined";
  toggle.disabled = !usable || state.browserOnly;
  document.getElementById("webcam").disabled = !usable;
  if (m && m.runtime_missing) status.textContent = "in-browser mode unavailable: " + m.runtime_missing;
  else if (m && !m.models.length) status.textContent = "no loaded model runs in the browser";
  else if (m && Object.keys(m.unsupported || {}).length) {
    status.textContent = "not in the browser: " + Object.entries(m.unsupported).map(([t, why]) => t + " (" + why + ")").join("; ");
  }
  if (state.browserOnly) toggle.checked = Boolean(usable);
}

async function loadModels() {
  const server = document.getElementById("server");
  if (state.browserOnly) {
    await loadManifest();
    const models = state.manifest ? state.manifest.models.map((m) => ({ task: m.task, model: m.id, detector: m.preprocess.detector, trained: m.trained })) : [];
    showTasks(models);
    server.textContent = "in this browser: " + models.map((m) => m.model).join(" · ");
    document.getElementById("footer").textContent = "Photos are analysed in this browser and never leave it.";
    return;
  }
  try {
    const info = await api("v1/models");
    document.getElementById("token-form").hidden = true;
    state.limits = info.limits;
    showTasks(info.models);
    server.textContent = info.models.map((m) => m.model).join(" · ");
    const untrained = info.models.filter((m) => !m.trained).map((m) => m.model);
    notice(untrained.length ? "Untrained (random weights, meaningless answers): " + untrained.join(", ") : "");
  } catch (error) {
    server.textContent = "not connected";
    if (error.status === 401) document.getElementById("token-form").hidden = false;
    notice(error.message);
  }
  await loadManifest();
}

function chosenTasks() {
  return [...document.querySelectorAll("input[name=task]:checked")].map((box) => box.value);
}

// One facezoo.js analyzer per task list, created on first use (the models load once).
function browserAnalyzer(tasks) {
  const available = new Set(state.manifest.models.map((m) => m.task));
  const runnable = tasks.filter((t) => available.has(t));
  if (!runnable.length) throw new Error("none of the chosen tasks runs in the browser: " + tasks.join(", "));
  const key = runnable.join(",");
  if (!state.analyzers.has(key)) state.analyzers.set(key, facezoo.create({ tasks: runnable, base: new URL("web/", location.href).href, token: state.token }));
  return state.analyzers.get(key);
}

function link(card, index, on) {
  card.querySelectorAll(`[data-face="${index}"]`).forEach((node) => node.classList.toggle("active", on));
}

// Caption boxes that overlap neither each other nor the picture's edges: each goes above its face
// if there is room, else below, else the nearest free row; long ones are cut with an ellipsis.
function layoutLabels(faces, texts, width, height, size) {
  const placed = [];
  const charWidth = size * 0.58, lineHeight = size * 1.3;
  const overlaps = (a) => placed.some((b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h);
  return faces.map((face, index) => {
    const [x1, y1, , y2] = face.face.box;
    let text = texts[index];
    const maxChars = Math.max(4, Math.floor((width - 4) / charWidth));
    if (text.length > maxChars) text = text.slice(0, maxChars - 1) + "…";
    const w = text.length * charWidth + 8, h = lineHeight;
    const x = Math.min(Math.max(0, x1), Math.max(0, width - w));
    const candidates = [y1 - h - 2, y2 + 2];
    for (let step = 1; step < 40; step++) candidates.push(y1 - h - 2 - step * h, y2 + 2 + step * h);
    const y = candidates.map((c) => Math.min(Math.max(0, c), height - h)).find((c) => !overlaps({ x, y: c, w, h })) ?? Math.max(0, y1 - h);
    const box = { x, y, w, h, text };
    placed.push(box);
    return box;
  });
}

function render(card, result, pictureURL) {
  const { width, height } = result.image;
  const stage = element("div", { class: "stage" });
  const picture = element("img", { src: pictureURL, alt: "the photo with each face boxed, numbered and labelled" });
  const overlay = svg("svg", { viewBox: `0 0 ${width} ${height}` });
  const size = Math.max(12, Math.round(Math.max(width, height) / 60));
  const texts = result.faces.map((_, index) => `${index + 1} ${Object.values(result.captions[index]).join(", ")}`);
  const labels = layoutLabels(result.faces, texts, width, height, size);
  result.faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.face.box;
    const box = svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "face-box", "data-face": index });
    const number = svg("text", { x: x1 + 4, y: y2 - 6, class: "face-number", "font-size": size }, String(index + 1));
    box.addEventListener("mouseenter", () => link(card, index, true));
    box.addEventListener("mouseleave", () => link(card, index, false));
    overlay.append(box, number);
  });
  labels.forEach((label, index) => {
    const group = svg("g", { class: "face-label", "data-face": index });
    group.append(
      svg("rect", { x: label.x, y: label.y, width: label.w, height: label.h, rx: 3 }),
      svg("text", { x: label.x + 4, y: label.y + label.h * 0.78, "font-size": size }, label.text),
    );
    overlay.append(group);
  });
  stage.append(picture, overlay);
  card.append(stage);

  if (!result.faces.length) {
    card.append(element("p", { class: "status" }, "No face found."));
    return;
  }
  const tasks = Object.keys(result.captions[0]);
  const table = element("table", { class: "faces" });
  const head = element("tr");
  ["#", "box (x1, y1, x2, y2)", "face score", ...tasks].forEach((title) => head.append(element("th", {}, title)));
  table.append(element("thead"), element("tbody"));
  table.tHead.append(head);
  result.faces.forEach((face, index) => {
    const row = element("tr", { class: "face-row", "data-face": index });
    const cells = [String(index + 1), face.face.box.map((v) => Math.round(v)).join(", "), face.face.score.toFixed(3), ...tasks.map((t) => result.captions[index][t])];
    cells.forEach((text) => row.append(element("td", {}, text)));
    row.addEventListener("mouseenter", () => link(card, index, true));
    row.addEventListener("mouseleave", () => link(card, index, false));
    table.tBodies[0].append(row);
  });
  card.append(table);
  const details = element("details");
  details.append(element("summary", {}, "JSON"), element("pre", { class: "json" }, JSON.stringify(result.faces, null, 1)));
  card.append(details);
}

async function analyze(file) {
  const local = inBrowser();
  const card = element("article", { class: "card", "data-mode": local ? "browser" : "server" });
  card.append(element("h2", {}, file.name));
  const status = element("p", { class: "status" }, local ? "analysing in this browser…" : "analysing…");
  card.append(status);
  document.getElementById("results").prepend(card);
  try {
    const tasks = chosenTasks();
    if (!tasks.length) throw new Error("choose at least one task");
    let result;
    const started = performance.now();
    if (local) {
      const analyzer = await browserAnalyzer(tasks);
      try {
        result = await analyzer.analyze(file);
      } catch (error) {
        throw new Error(`${file.name}: ${error.message || "not an image this browser can decode"}`);
      }
    } else {
      if (state.limits && file.size > state.limits.max_upload_bytes) {
        throw new Error(`${file.name} is ${file.size} bytes, over the server's limit of ${state.limits.max_upload_bytes}`);
      }
      const form = new FormData();
      form.append("image", file);
      const query = new URLSearchParams({ tasks: tasks.join(",") });
      result = await api("v1/analyze?" + query, { method: "POST", body: form });
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    status.textContent = result.faces.length + (result.faces.length === 1 ? " face" : " faces");
    status.title = `${seconds} s ${local ? "in this browser" : "on the server, with the upload"}`;
    render(card, result, URL.createObjectURL(file));
    card.classList.add("done");
  } catch (error) {
    status.remove();
    card.append(element("p", { class: "error", role: "alert" }, error.message));
    card.classList.add("failed");
    if (error.status === 401) document.getElementById("token-form").hidden = false;
  }
}

async function analyzeAll(files) {
  for (const file of files) await analyze(file); // one at a time: the server's queue is short on purpose
}

// Webcam: detection on every frame (at most 320 px on the longer side), faces tracked by box
// overlap so that each keeps its number; a face's task results are computed when it appears and
// refreshed every REFRESH_MS (docs/browser.md has the frame rates both ways).
const live = { running: false, stream: null };
const REFRESH_MS = Number(new URLSearchParams(location.search).get("refresh") ?? 1000); // ?refresh=0: every frame (benchmarks/web_webcam.py)

async function startWebcam() {
  const button = document.getElementById("webcam");
  if (live.running) {
    live.running = false;
    return;
  }
  const tasks = chosenTasks();
  const analyzer = await browserAnalyzer(tasks.length ? tasks : state.manifest.models.slice(0, 1).map((m) => m.task));
  const video = document.getElementById("live-video");
  live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  video.srcObject = live.stream;
  await video.play();
  const panel = document.getElementById("live");
  panel.hidden = false;
  panel.dataset.frames = "0";
  button.textContent = "Stop webcam";
  live.running = true;
  const canvas = document.getElementById("live-canvas");
  const context = canvas.getContext("2d");
  const tracker = new facezoo.Tracker();
  const described = new Map(); // track id -> {at, caption}
  const times = [], spent = { detect: 0, tasks: 0 };
  while (live.running) {
    const image = await facezoo.pixels(video);
    let started = performance.now();
    const faces = await analyzer.detect(image, { maxSide: 320 });
    const ids = tracker.update(faces);
    spent.detect += performance.now() - started;
    started = performance.now();
    const now = performance.now();
    const due = faces.map((_, i) => i).filter((i) => !described.has(ids[i]) || now - described.get(ids[i]).at >= REFRESH_MS);
    if (due.length) {
      const fresh = await analyzer.describe(image, due.map((i) => faces[i]));
      due.forEach((i, k) => described.set(ids[i], { at: now, caption: Object.values(fresh.captions[k]).join(", ") }));
    }
    for (const id of [...described.keys()]) if (!tracker.tracks.some((t) => t.id === id)) described.delete(id);
    spent.tasks += performance.now() - started;
    canvas.width = image.width;
    canvas.height = image.height;
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    context.lineWidth = 3;
    context.font = "16px system-ui, sans-serif";
    faces.forEach((face, index) => {
      const [x1, y1, x2, y2] = face.box;
      const text = `#${ids[index]} ${described.get(ids[index]).caption}`;
      context.strokeStyle = "#00ff66";
      context.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const w = context.measureText(text).width + 8;
      const x = Math.min(Math.max(0, x1), canvas.width - w), y = Math.max(0, y1 - 22);
      context.fillStyle = "rgba(0, 0, 0, .75)";
      context.fillRect(x, y, w, 20);
      context.fillStyle = "#fff";
      context.fillText(text, x + 4, y + 15);
    });
    times.push(performance.now());
    while (times.length && times[0] < times[times.length - 1] - 2000) times.shift();
    const fps = times.length > 1 ? ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]) : 0;
    const frames = Number(panel.dataset.frames) + 1;
    document.getElementById("fps").textContent = `${fps.toFixed(1)} frames/s, ${faces.length} faces`;
    Object.assign(panel.dataset, {
      fps: fps.toFixed(2), frames: String(frames), ids: JSON.stringify(ids),
      detectMs: (spent.detect / frames).toFixed(1), tasksMs: (spent.tasks / frames).toFixed(1),
    });
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint and take input between frames
  }
  live.stream.getTracks().forEach((track) => track.stop());
  button.textContent = "Start webcam";
}

document.addEventListener("DOMContentLoaded", () => {
  const input = document.getElementById("photos");
  const drop = document.getElementById("drop");
  input.addEventListener("change", () => {
    analyzeAll([...input.files]);
    input.value = "";
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    analyzeAll([...event.dataTransfer.files]);
  });
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = document.getElementById("token").value.trim();
    sessionStorage.setItem("facezoo-token", state.token);
    loadModels();
  });
  document.getElementById("webcam").addEventListener("click", () =>
    startWebcam().catch((error) => {
      live.running = false;
      notice("webcam: " + error.message);
    }),
  );
  loadModels();
});
