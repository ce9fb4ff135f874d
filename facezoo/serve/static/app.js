// The facezoo page: send each photo to /v1/analyze, show the server's annotated photo (the same
// drawing as `facezoo predict --annotate`) with numbered face boxes and a table row per face.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { token: sessionStorage.getItem("facezoo-token") || "", limits: null };

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
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

async function loadModels() {
  const server = document.getElementById("server");
  try {
    const info = await api("/v1/models");
    document.getElementById("token-form").hidden = true;
    state.limits = info.limits;
    const fieldset = document.getElementById("tasks");
    fieldset.querySelectorAll("label").forEach((label) => label.remove());
    const detector = info.models.length ? info.models[0].detector : null;
    for (const model of info.models) {
      const label = element("label", { title: model.model + " (faces found by " + model.detector + ")" });
      const box = element("input", { type: "checkbox", name: "task", value: model.task });
      box.checked = model.detector === detector; // one analysis runs one detector
      label.append(box, " " + model.task);
      fieldset.append(label);
    }
    server.textContent = info.models.map((m) => m.model).join(" · ");
    const untrained = info.models.filter((m) => !m.trained).map((m) => m.model);
    notice(untrained.length ? "Untrained (random weights, meaningless answers): " + untrained.join(", ") : "");
  } catch (error) {
    server.textContent = "not connected";
    if (error.status === 401) document.getElementById("token-form").hidden = false;
    notice(error.message);
  }
}

function chosenTasks() {
  return [...document.querySelectorAll("input[name=task]:checked")].map((box) => box.value);
}

function link(card, index, on) {
  card.querySelectorAll(`[data-face="${index}"]`).forEach((node) => node.classList.toggle("active", on));
}

function render(card, result) {
  const { width, height } = result.image;
  const stage = element("div", { class: "stage" });
  const picture = element("img", { src: result.annotated, alt: "the photo with each face boxed and labelled" });
  const overlay = document.createElementNS(SVG, "svg");
  overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const size = Math.max(14, Math.round(Math.max(width, height) / 40));
  result.faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.face.box;
    const box = document.createElementNS(SVG, "rect");
    Object.entries({ x: x1, y: y1, width: x2 - x1, height: y2 - y1, class: "face-box", "data-face": index }).forEach(([k, v]) => box.setAttribute(k, v));
    const number = document.createElementNS(SVG, "text");
    Object.entries({ x: x1 + 4, y: y2 - 6, class: "face-number", "font-size": size }).forEach(([k, v]) => number.setAttribute(k, v));
    number.textContent = index + 1;
    box.addEventListener("mouseenter", () => link(card, index, true));
    box.addEventListener("mouseleave", () => link(card, index, false));
    overlay.append(box, number);
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
  details.append(element("summary", {}, "JSON"), element("pre", {}, JSON.stringify(result.faces, null, 1)));
  card.append(details);
}

async function analyze(file) {
  const card = element("article", { class: "card" });
  card.append(element("h2", {}, file.name));
  const status = element("p", { class: "status" }, "analysing…");
  card.append(status);
  document.getElementById("results").prepend(card);
  try {
    if (state.limits && file.size > state.limits.max_upload_bytes) {
      throw new Error(`${file.name} is ${file.size} bytes, over the server's limit of ${state.limits.max_upload_bytes}`);
    }
    const tasks = chosenTasks();
    if (!tasks.length) throw new Error("choose at least one task");
    const form = new FormData();
    form.append("image", file);
    const query = new URLSearchParams({ annotate: "true", tasks: tasks.join(",") });
    const result = await api("/v1/analyze?" + query, { method: "POST", body: form });
    status.textContent = result.faces.length + (result.faces.length === 1 ? " face" : " faces");
    render(card, result);
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
  loadModels();
});
