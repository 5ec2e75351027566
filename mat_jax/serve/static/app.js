// mat-jax serve page: load an image, brush the hole on #canvas (painted = hole), ask /api/inpaint for K fills.
// The mask sent is a PNG of the image's size, white = hole (the server converts it to 1 = known for the model).
"use strict";

const $ = (id) => document.getElementById(id);
const imageCanvas = $("image-canvas");
const maskCanvas = $("canvas");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const PAINT = "rgb(255, 40, 40)";
const MAX_HISTORY = 30;

const state = {
  info: null,
  imageB64: null, // the input as sent: PNG/JPEG base64 without the data-URL prefix
  imageURL: null, // what the page shows as "the original"
  undo: [],
  redo: [],
  drawing: false,
  last: null,
  timer: null,
};

// ---- messages -------------------------------------------------------------------------------------------------
function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = false;
}
function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// ---- loading an image -----------------------------------------------------------------------------------------
function dataURLOfBlob(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("cannot read the file"));
    reader.readAsDataURL(blob);
  });
}
function loadImageElement(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the file is not an image the browser can read"));
    img.src = url;
  });
}
function displayScale(w) {
  if (w < 256) return Math.ceil(256 / w); // small images: whole-pixel zoom
  const room = Math.max(320, Math.min(900, window.innerWidth - 60));
  return Math.min(1, room / w);
}

async function setInput(blob, name) {
  clearError();
  let url;
  try {
    url = await dataURLOfBlob(blob);
    const img = await loadImageElement(url);
    const w = img.naturalWidth, h = img.naturalHeight;
    const max = state.info ? state.info.max_side : Infinity;
    if (Math.max(w, h) > max) throw new Error(`the image is ${w}x${h}; this server takes sides up to ${max} px`);
    for (const c of [imageCanvas, maskCanvas]) {
      c.width = w;
      c.height = h;
      const s = displayScale(w);
      c.style.width = `${w * s}px`;
      c.style.height = `${h * s}px`;
      c.style.imageRendering = s > 1 ? "pixelated" : "auto";
    }
    imageCanvas.getContext("2d").drawImage(img, 0, 0);
    const typed = /^data:image\/(png|jpeg);base64,/.test(url);
    state.imageURL = typed ? url : imageCanvas.toDataURL("image/png"); // other formats go as PNG
    state.imageB64 = state.imageURL.split(",", 2)[1];
    state.undo = [];
    state.redo = [];
    maskCtx.clearRect(0, 0, w, h);
    updateHistoryButtons();
    $("stage").classList.remove("empty");
    $("inpaint").disabled = false;
    $("info").dataset.image = `${name || "image"} ${w}x${h}`;
    renderInfo();
  } catch (e) {
    showError(`cannot open ${name || "the image"}: ${e.message}`);
  }
}

// ---- brushing -------------------------------------------------------------------------------------------------
function snapshot() {
  state.undo.push(maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height));
  if (state.undo.length > MAX_HISTORY) state.undo.shift();
  state.redo = [];
  updateHistoryButtons();
}
function updateHistoryButtons() {
  $("undo").disabled = state.undo.length === 0;
  $("redo").disabled = state.redo.length === 0;
}
function undo() {
  if (!state.undo.length) return;
  state.redo.push(maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height));
  maskCtx.putImageData(state.undo.pop(), 0, 0);
  updateHistoryButtons();
}
function redo() {
  if (!state.redo.length) return;
  state.undo.push(maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height));
  maskCtx.putImageData(state.redo.pop(), 0, 0);
  updateHistoryButtons();
}
function canvasPoint(ev) {
  const r = maskCanvas.getBoundingClientRect();
  return {
    x: ((ev.clientX - r.left) * maskCanvas.width) / r.width,
    y: ((ev.clientY - r.top) * maskCanvas.height) / r.height,
    scale: maskCanvas.width / r.width,
  };
}
function strokeTo(p) {
  maskCtx.save();
  maskCtx.globalCompositeOperation = $("eraser").checked ? "destination-out" : "source-over";
  maskCtx.strokeStyle = maskCtx.fillStyle = PAINT;
  maskCtx.lineWidth = Number($("brush").value) * p.scale;
  maskCtx.lineCap = maskCtx.lineJoin = "round";
  maskCtx.beginPath();
  const from = state.last || p;
  maskCtx.moveTo(from.x, from.y);
  maskCtx.lineTo(p.x + (from === p ? 0.01 : 0), p.y);
  maskCtx.stroke();
  maskCtx.restore();
  state.last = p;
}
maskCanvas.addEventListener("pointerdown", (ev) => {
  if (ev.button !== 0) return;
  maskCanvas.setPointerCapture(ev.pointerId);
  snapshot();
  state.drawing = true;
  state.last = null;
  strokeTo(canvasPoint(ev));
});
maskCanvas.addEventListener("pointermove", (ev) => {
  if (state.drawing) strokeTo(canvasPoint(ev));
});
for (const type of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(type, () => {
    state.drawing = false;
    state.last = null;
  });
}

function setBrush(size) {
  const b = $("brush");
  b.value = Math.max(Number(b.min), Math.min(Number(b.max), size));
  $("brush-value").textContent = b.value;
}
$("brush").addEventListener("input", () => setBrush(Number($("brush").value)));
$("opacity").addEventListener("input", () => (maskCanvas.style.opacity = Number($("opacity").value) / 100));
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("clear").addEventListener("click", () => {
  snapshot();
  maskCtx.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
});
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== "range" && ev.target.type !== "checkbox") return;
  const key = ev.key.toLowerCase();
  if ((ev.ctrlKey || ev.metaKey) && key === "z") {
    ev.preventDefault();
    ev.shiftKey ? redo() : undo();
  } else if ((ev.ctrlKey || ev.metaKey) && key === "y") {
    ev.preventDefault();
    redo();
  } else if (ev.key === "[") {
    setBrush(Math.round(Number($("brush").value) / 1.25));
  } else if (ev.key === "]") {
    setBrush(Math.round(Number($("brush").value) * 1.25) + 1);
  }
});

// The mask as sent: white = hole (any paint), black = known, the image's size.
function maskCanvasWhiteHole() {
  const w = maskCanvas.width, h = maskCanvas.height;
  const paint = maskCtx.getImageData(0, 0, w, h);
  const out = new ImageData(w, h);
  for (let i = 0; i < paint.data.length; i += 4) {
    const v = paint.data[i + 3] > 0 ? 255 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  c.getContext("2d").putImageData(out, 0, 0);
  return c;
}
function download(url, name) {
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
}
$("download-mask").addEventListener("click", () => {
  if (!state.imageB64) return showError("open an image first");
  download(maskCanvasWhiteHole().toDataURL("image/png"), "mask_white_is_hole.png");
});

// ---- inpainting -----------------------------------------------------------------------------------------------
function intOrRaw(id) {
  const v = $(id).value.trim();
  return /^-?\d+$/.test(v) ? Number(v) : v; // sent as typed: the server validates and names the field
}
function numberOrRaw(id) {
  const v = $(id).value.trim();
  return v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
}
function startProgress() {
  const t0 = performance.now();
  $("progress").hidden = false;
  $("elapsed").textContent = "0.0";
  state.timer = setInterval(() => ($("elapsed").textContent = ((performance.now() - t0) / 1000).toFixed(1)), 100);
}
function stopProgress() {
  clearInterval(state.timer);
  $("progress").hidden = true;
}

async function inpaint() {
  if (!state.imageB64) return showError("open an image first");
  clearError();
  const body = {
    image: state.imageB64,
    mask: maskCanvasWhiteHole().toDataURL("image/png"),
    k: intOrRaw("k"),
    seed: intOrRaw("seed"),
    truncation_psi: numberOrRaw("psi"),
    noise_mode: $("noise").value,
  };
  if (state.info && state.info.c_dim > 0) body.label = intOrRaw("label");
  $("inpaint").disabled = true;
  startProgress();
  try {
    const resp = await fetch("/api/inpaint", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer;
    try {
      answer = await resp.json();
    } catch {
      throw new Error(`the server answered ${resp.status} without JSON`);
    }
    if (!resp.ok) throw new Error(answer.field ? `${answer.field}: ${answer.error}` : answer.error);
    showResults(answer);
  } catch (e) {
    showError(`inpainting failed: ${e.message}`);
  } finally {
    stopProgress();
    $("inpaint").disabled = false;
  }
}
$("inpaint").addEventListener("click", inpaint);
$("new-seeds").addEventListener("click", () => ($("seed").value = Math.floor(Math.random() * 1e6)));

function showResults(answer) {
  const results = $("results");
  results.replaceChildren();
  const style = imageCanvas.style;
  answer.images.forEach((b64, i) => {
    const url = `data:image/png;base64,${b64}`;
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = url;
    img.alt = `fill with seed ${answer.seeds[i]}`;
    img.dataset.seed = answer.seeds[i];
    img.style.width = style.width;
    img.style.height = style.height;
    img.style.imageRendering = style.imageRendering;
    const original = state.imageURL;
    const show = (src) => () => (img.src = src);
    img.addEventListener("pointerdown", show(original)); // hold to compare with the original
    for (const t of ["pointerup", "pointerleave", "pointercancel"]) img.addEventListener(t, show(url));
    const cap = document.createElement("figcaption");
    const seed = document.createElement("span");
    seed.textContent = `seed ${answer.seeds[i]}`;
    const dl = document.createElement("a");
    dl.href = url;
    dl.download = `inpainted_seed${answer.seeds[i]}.png`;
    dl.textContent = "download";
    dl.className = "download";
    const use = document.createElement("button");
    use.textContent = "use as input";
    use.className = "use";
    use.addEventListener("click", async () => setInput(await (await fetch(url)).blob(), `seed ${answer.seeds[i]} fill`));
    cap.append(seed, dl, use);
    fig.append(img, cap);
    results.append(fig);
  });
}

// ---- inputs: file, drop, paste, demo photos -------------------------------------------------------------------
$("file").addEventListener("change", (ev) => {
  const f = ev.target.files[0];
  if (f) setInput(f, f.name);
  ev.target.value = "";
});
document.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  document.body.classList.remove("dragging");
  const f = ev.dataTransfer.files[0];
  if (f) setInput(f, f.name);
});
document.addEventListener("paste", (ev) => {
  const item = [...ev.clipboardData.items].find((it) => it.type.startsWith("image/"));
  if (item) setInput(item.getAsFile(), "pasted image");
});
$("demo").addEventListener("change", async (ev) => {
  const url = ev.target.value;
  if (!url) return;
  try {
    const resp = await fetch(url);
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    await setInput(await resp.blob(), ev.target.selectedOptions[0].textContent);
  } catch (e) {
    showError(`cannot load the demo photo: ${e.message}`);
  }
});

function renderInfo() {
  const i = state.info;
  if (!i) return;
  const img = $("info").dataset.image ? ` · ${$("info").dataset.image}` : "";
  $("info").textContent = `${i.checkpoint} · ${i.resolution}px model · ${i.device}${img}`;
}

async function init() {
  try {
    const info = await (await fetch("/api/info")).json();
    state.info = info;
    $("k").min = info.k_range[0];
    $("k").max = info.k_range[1];
    $("k").value = info.default_k;
    $("label-field").hidden = info.c_dim === 0;
    if (info.c_dim > 0) $("label").max = info.c_dim - 1;
    renderInfo();
    const photos = (await (await fetch("/api/demo-photos")).json()).photos;
    for (const p of photos) {
      const o = document.createElement("option");
      o.value = p.url;
      o.textContent = p.name;
      o.title = p.license;
      $("demo").append(o);
    }
  } catch (e) {
    showError(`cannot reach the server: ${e.message}`);
  }
}
init();
