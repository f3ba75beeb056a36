// The drawing canvas of the Draw tab (see demo/canvas.py). Runs once per page as a gr.HTML
// js_on_load script: `element`, `props` and `watch` come from Gradio.
//
// Two layers: the ink (pen and eraser: what the model reads as the sketch or label map)
// and, for models that take colour hints, a colour layer painted with the Colour brush,
// shown over the ink in its own colours and sent as a separate transparent PNG. Strokes of
// both are one list of operations, so undo/redo/clear are a replay. After each change the
// layers are sent as small PNG data URLs in one request to the app's own route (see send).
const view = element.querySelector("canvas");
const viewCtx = view.getContext("2d");
const palette = element.querySelector(".sk-palette");
const colours = element.querySelector(".sk-colours");
const picker = element.querySelector(".sk-colour");
const sizeInput = element.querySelector(".sk-size");
const activeName = element.querySelector(".sk-active");
const whatPicker = element.querySelector(".sk-what"); // a class model's "It shows" (Auto: "")
const buttons = Object.fromEntries([...element.querySelectorAll("[data-action]")].map((b) => [b.dataset.action, b]));

function layer() {
  const c = document.createElement("canvas");
  c.width = view.width;
  c.height = view.height;
  return c;
}
const ink = layer();
const hint = layer();
const inkCtx = ink.getContext("2d");
const hintCtx = hint.getContext("2d");

let setup = { fill: "#ffffff", pen: "#000000", size: 6, palette: [], hints: false, key: "", classes: [] };
// {layer: "ink"|"hint", color, size, erase, points} (rect/fill: shape), {clear: "ink"|"hint"}, or
// {picture: true, ink, hint}: a whole drawing put in at once (an example, an outline, a drawing
// kept from before a reload), which one Undo takes away like any stroke
let ops = [];
let undone = [];
let current = null;
let tool = "pen"; // pen | eraser | rect | fill (label maps) | colour | uncolour
let color = setup.pen;
let hintColor = picker.value;
let sent = 0;
const HINT_SIZE = 16; // the colour brush starts broad: hints are areas of colour, not lines
const sizes = { ink: setup.size, hint: HINT_SIZE }; // each brush keeps its own size
const layerOf = (t) => (t === "colour" || t === "uncolour" ? "hint" : "ink");
const kept = {}; // drawings per model kind (setup.key): switching models never loses one

function visibleOps(which) {
  let start = 0;
  ops.forEach((op, i) => { if (op.clear === which || op.picture) start = i + 1; });
  return ops.slice(start).filter((op) => op.layer === which);
}

function fillRect(ctx, op) {
  const [[x0, y0], [x1, y1]] = [op.points[0], op.points[op.points.length - 1]];
  ctx.fillStyle = op.color;
  ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
}

const FILL_TOLERANCE = 60; // per channel: takes in the blended pixels along a stroke's edge
function floodFill(ctx, op) {
  const { width: w, height: h } = ctx.canvas;
  const image = ctx.getImageData(0, 0, w, h);
  const d = image.data;
  const [sx, sy] = op.points[0].map(Math.floor);
  if (sx < 0 || sy < 0 || sx >= w || sy >= h) return;
  const start = (sy * w + sx) * 4;
  const from = [d[start], d[start + 1], d[start + 2]];
  const to = [1, 3, 5].map((i) => parseInt(op.color.slice(i, i + 2), 16));
  const near = (i) => Math.abs(d[i] - from[0]) <= FILL_TOLERANCE && Math.abs(d[i + 1] - from[1]) <= FILL_TOLERANCE
    && Math.abs(d[i + 2] - from[2]) <= FILL_TOLERANCE;
  const seen = new Uint8Array(w * h);
  const stack = [sy * w + sx];
  while (stack.length) {
    const p = stack.pop();
    if (seen[p] || !near(p * 4)) continue;
    seen[p] = 1;
    d.set(to, p * 4);
    const x = p % w;
    if (x > 0) stack.push(p - 1);
    if (x < w - 1) stack.push(p + 1);
    if (p >= w) stack.push(p - w);
    if (p < w * (h - 1)) stack.push(p + w);
  }
  ctx.putImageData(image, 0, 0);
}

// The eraser on the ink puts back the paper exactly: a stroke painted in the paper's colour
// leaves a grey fringe where it half-covers a line, so every pixel it touches is set instead.
const scratch = layer();
const scratchCtx = scratch.getContext("2d");
function eraseInk(op) {
  const pad = Math.ceil(op.size / 2) + 2;
  const xs = op.points.map((p) => p[0]), ys = op.points.map((p) => p[1]);
  const x0 = Math.max(0, Math.floor(Math.min(...xs)) - pad), y0 = Math.max(0, Math.floor(Math.min(...ys)) - pad);
  const x1 = Math.min(ink.width, Math.ceil(Math.max(...xs)) + pad), y1 = Math.min(ink.height, Math.ceil(Math.max(...ys)) + pad);
  if (x1 <= x0 || y1 <= y0) return;
  scratchCtx.clearRect(x0, y0, x1 - x0, y1 - y0);
  stroke(scratchCtx, { ...op, color: "#000" });
  const mask = scratchCtx.getImageData(x0, y0, x1 - x0, y1 - y0).data;
  const image = inkCtx.getImageData(x0, y0, x1 - x0, y1 - y0);
  const d = image.data;
  const fill = [1, 3, 5].map((i) => parseInt(setup.fill.slice(i, i + 2), 16));
  for (let i = 0; i < d.length; i += 4) {
    if (mask[i + 3]) { d[i] = fill[0]; d[i + 1] = fill[1]; d[i + 2] = fill[2]; d[i + 3] = 255; }
  }
  inkCtx.putImageData(image, x0, y0);
}

function paint(op) {
  const ctx = op.layer === "hint" ? hintCtx : inkCtx;
  if (op.shape === "rect") return fillRect(ctx, op);
  if (op.shape === "fill") return floodFill(ctx, op);
  if (op.erase && op.layer === "ink") return eraseInk(op);
  stroke(ctx, op);
}

function stroke(ctx, op) {
  const pts = op.points;
  ctx.globalCompositeOperation = op.erase && op.layer === "hint" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = op.color;
  ctx.lineWidth = op.size;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  if (pts.length === 1) {
    ctx.arc(pts[0][0], pts[0][1], op.size / 2, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
  ctx.globalCompositeOperation = "source-over";
}

// Colour hints are shown as the colour they are, outlined like a swatch so they read over
// any label colour; on a drawing the lines stay visible over them.
function show() {
  viewCtx.clearRect(0, 0, view.width, view.height);
  viewCtx.drawImage(ink, 0, 0);
  if (setup.hints) {
    viewCtx.filter = "drop-shadow(0 0 1px #000) drop-shadow(0 0 1px #fff)";
    viewCtx.drawImage(hint, 0, 0);
    viewCtx.filter = "none";
    if (!setup.palette.length) { // black lines over the colour: white paper leaves it as it is
      viewCtx.globalCompositeOperation = "multiply";
      viewCtx.drawImage(ink, 0, 0);
      viewCtx.globalCompositeOperation = "source-over";
    }
  }
}

// A layer's picture under its strokes (the last whole drawing put in), unless cleared since.
function underlay(which) {
  let found = null;
  for (const op of ops) {
    if (op.picture) found = op[which];
    else if (op.clear === which) found = null;
  }
  return found;
}

function repaint() {
  inkCtx.fillStyle = setup.fill;
  inkCtx.fillRect(0, 0, ink.width, ink.height);
  const inkPicture = underlay("ink");
  if (inkPicture) {
    inkCtx.imageSmoothingEnabled = setup.palette.length === 0; // label maps keep exact colours
    inkCtx.drawImage(inkPicture, 0, 0, ink.width, ink.height);
  }
  visibleOps("ink").forEach(paint);
  hintCtx.clearRect(0, 0, hint.width, hint.height);
  const hintPicture = underlay("hint");
  if (hintPicture) hintCtx.drawImage(hintPicture, 0, 0, hint.width, hint.height);
  visibleOps("hint").forEach(paint);
  show();
  buttons.undo.disabled = ops.length === 0;
  buttons.redo.disabled = undone.length === 0;
}

// Each drawing goes to the app's own route (demo/rest.py) and its answer is announced to
// the result box (demo/static/result.js); no Gradio event sits in between. At most one
// drawing is in flight: while the pen is down, a newer drawing waits for it and only the
// latest one goes next; anything else (the pen's release, undo, an example, Generate)
// goes at once and makes the one in flight stale. Drawings travel over one WebSocket per
// page (a message costs the browser about 1 ms, a request about 5); where it cannot open,
// or closes before it answers, over plain requests to the same route.
const ROUTE = new URL("api/v1/draw", document.baseURI).href;
const SOCKET = ROUTE.replace(/^http/, "ws") + "/socket";
const SOCKET_RETRY_MS = 5000;
let lastSent = 0;
let inFlight = null; // { seq, abort } of the drawing being answered
let waiting = false; // a live frame is due once the drawing in flight is answered
const PAGE = Math.random().toString(36).slice(2); // names this page's drawings to the server
let socket = null; // the open draw socket, if any
let socketTried = -Infinity;
const pending = new Map(); // seq -> resolves with the socket's answer (null: it closed first)

function announce(detail) {
  document.dispatchEvent(new CustomEvent("pix2pix:result", { detail }));
}

function openSocket() {
  if (socket || typeof WebSocket === "undefined" || performance.now() - socketTried < SOCKET_RETRY_MS) return;
  socketTried = performance.now();
  const ws = new WebSocket(SOCKET);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { socket = ws; };
  ws.onmessage = (event) => {
    // One binary message per drawing: a 4-byte length, a JSON header, the image.
    const data = new Uint8Array(event.data);
    const size = new DataView(event.data).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + size)));
    const done = pending.get(header.seq);
    pending.delete(header.seq);
    if (done) done({ ...header, blob: header.code === 200 ? new Blob([data.subarray(4 + size)], { type: "image/jpeg" }) : null });
  };
  ws.onclose = () => {
    if (socket === ws) socket = null;
    for (const done of pending.values()) done(null);
    pending.clear();
  };
}

function snapshot(explicit) {
  const painted = visibleOps("hint").length || underlay("hint");
  const hints = setup.hints && (painted || (current && current.layer === "hint")) ? hint.toDataURL("image/png") : null;
  const png = ink.toDataURL("image/png");
  if (!current) remember(png, hints); // a finished change (not a live frame): kept for a reload
  return { png, hints, model: setup.model || "", explicit, what: whatPicker.value };
}

function viaSocket(body) {
  return new Promise((done) => {
    pending.set(body.seq, done);
    socket.send(JSON.stringify(body));
  });
}

async function viaRequest(body, signal) {
  const response = await fetch(ROUTE, {
    method: "POST", body: JSON.stringify(body), signal,
    headers: { "Content-Type": "application/json" }, credentials: "same-origin",
  });
  const answer = { code: response.status, status: decodeURIComponent(response.headers.get("X-Status") || "") };
  const timing = response.headers.get("Server-Timing") || "";
  answer.timing = Object.fromEntries([...timing.matchAll(/(\w+);dur=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
  answer.pair = response.headers.get("X-Pair") || "";
  if (response.status === 200) answer.blob = await response.blob();
  else if (response.status !== 204) answer.error = (await response.json().catch(() => ({}))).error;
  return answer;
}

async function post(body) {
  const seq = ++sent;
  body = { ...body, page: PAGE, seq };
  const abort = new AbortController();
  inFlight = { seq, abort };
  lastSent = performance.now();
  performance.mark("pix2pix:sent", { detail: seq }); // for scripts/bench_stroke.py
  try {
    const answer = (socket && (await viaSocket(body))) || (await viaRequest(body, abort.signal));
    performance.mark("pix2pix:answered", { detail: { seq, timing: answer.timing || {} } });
    if (answer.code === 200) {
      if (seq !== sent) return; // a newer drawing has gone since
      const url = URL.createObjectURL(answer.blob);
      const token = answer.pair ? encodeURIComponent(answer.pair) : "";
      announce({ url, status: answer.status, pair: token && `${ROUTE}/pair/${token}`, png: token && `${ROUTE}/result/${token}` });
    } else if (seq === sent && answer.code === 204) {
      announce({ clear: true, status: answer.status });
    } else if (seq === sent) {
      announce({ status: answer.error || `The app answered ${answer.code}.`, error: true });
    }
  } catch (error) {
    if (error.name !== "AbortError" && seq === sent) {
      announce({ status: "The app could not be reached: is it still running?", error: true });
    }
  } finally {
    if (inFlight && inFlight.seq === seq) inFlight = null;
    if (!inFlight && waiting) {
      waiting = false;
      post(snapshot(false));
    }
    openSocket();
  }
}

function send(explicit = false) {
  if (current && !current.shape) { // a live frame
    if (inFlight) { waiting = true; return; }
    return post(snapshot(false));
  }
  forgetInFlight();
  post(snapshot(explicit));
}

// While the pen is down the result follows it: the drawing so far is sent at most every
// LIVE_MS; the pen's release always sends the finished stroke.
const LIVE_MS = 100;
function sendWhileDrawing() {
  if (current && !current.shape && performance.now() - lastSent >= LIVE_MS) send();
}

document.addEventListener("pix2pix:generate", () => send(true));

function select(newTool, newColor) {
  sizes[layerOf(tool)] = Number(sizeInput.value);
  tool = newTool;
  sizeInput.value = sizes[layerOf(tool)];
  if (newColor && tool === "pen") color = newColor;
  for (const name of ["pen", "eraser", "rect", "fill", "colour", "uncolour"]) {
    buttons[name].classList.toggle("on", tool === name);
  }
  const labelTool = tool === "pen" || tool === "rect" || tool === "fill";
  palette.querySelectorAll("button").forEach((b) => b.classList.toggle("on", labelTool && b.dataset.color === color));
  const label = setup.palette.find((c) => c.color === color);
  activeName.textContent = label && labelTool ? `Brush: ${label.name}` : "";
}

function buildPalette() {
  palette.replaceChildren(...setup.palette.map((c) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.color = c.color;
    b.title = c.name;
    b.innerHTML = `<i style="background:${c.color}"></i>`;
    b.append(c.name);
    b.addEventListener("click", () => { color = c.color; select(tool === "rect" || tool === "fill" ? tool : "pen"); });
    return b;
  }));
  palette.hidden = setup.palette.length === 0;
  element.querySelectorAll(".sk-label-tool").forEach((b) => { b.hidden = setup.palette.length === 0; });
  element.querySelectorAll(".sk-hint-tool").forEach((b) => { b.hidden = !setup.hints; });
  colours.hidden = !setup.hints; // more or fewer rows of tools: the page's resize refits the canvas
  const classes = setup.classes || [];
  whatPicker.replaceChildren(...["", ...classes].map((name) => new Option(name || "Auto", name)));
  whatPicker.parentElement.hidden = classes.length === 0;
}
whatPicker.addEventListener("change", () => { if (ops.length) send(); });

function forgetInFlight() {
  waiting = false;
  if (inFlight) inFlight.abort.abort();
  sent++; // an answer still on its way is for a drawing no longer shown
}

// The drawing of each kind is kept in the browser too, so a reload brings it back (Clear clears it).
const STORE = "pix2pix:drawing:";
function remember(png, hints) {
  if (!setup.key || !setup.model) return;
  try {
    localStorage.setItem(STORE + setup.key, JSON.stringify({ png, hints }));
  } catch (error) { /* storage full or off: the drawing just is not kept */ }
}
function remembered(key) {
  try {
    return JSON.parse(localStorage.getItem(STORE + key) || "null");
  } catch (error) {
    return null;
  }
}

function loadImage(src) {
  return new Promise((done) => {
    if (!src) return done(null);
    const img = new Image();
    img.onload = () => done(img);
    img.onerror = () => done(null);
    img.src = src;
  });
}

// A whole drawing put in (and its colours): one more step, which Undo takes back.
function putPicture(src, hintSrc) {
  return Promise.all([loadImage(src), loadImage(setup.hints ? hintSrc : null)]).then(([img, hintImg]) => {
    ops.push({ picture: true, ink: img, hint: hintImg });
    undone = [];
    repaint();
    send();
  });
}

function apply(value) {
  forgetInFlight(); // another model, or a new picture: the last drawing's answer is not wanted
  if (setup.key) kept[setup.key] = { ops, undone };
  setup = { ...setup, ...value.setup };
  const old = kept[setup.key];
  ({ ops, undone } = old || { ops: [], undone: [] });
  tool = "pen";
  sizeInput.value = sizes.ink = setup.size;
  buildPalette();
  select("pen", setup.pen);
  // A first look at this kind on this page: the drawing kept from before a reload comes back,
  // and a showcase (the page's opening example) does not replace it.
  const stored = !old && setup.model ? remembered(setup.key) : null;
  if (stored && stored.png && !(value.image && !value.showcase)) return putPicture(stored.png, stored.hints);
  if (value.image) return putPicture(value.image, value.image_hints);
  repaint();
  if (value.generate || ops.length) send();
  else announce({ clear: true, status: "" }); // another model: the last one's result goes
}

function at(event) {
  const r = view.getBoundingClientRect();
  return [(event.clientX - r.left) * (view.width / r.width), (event.clientY - r.top) * (view.height / r.height)];
}

view.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  view.setPointerCapture(event.pointerId);
  const onHint = tool === "colour" || tool === "uncolour";
  current = {
    layer: onHint ? "hint" : "ink", erase: tool === "uncolour" || tool === "eraser", size: Number(sizeInput.value),
    points: [at(event)],
    color: tool === "eraser" ? setup.fill : tool === "colour" ? hintColor : tool === "uncolour" ? "#000" : color,
    shape: tool === "rect" || tool === "fill" ? tool : undefined,
  };
  if (current.shape === "fill") return finish();
  if (!current.shape) paint(current);
  show();
  lastSent = performance.now(); // the first live frame goes LIVE_MS after the pen touches down
});

view.addEventListener("pointermove", (event) => {
  if (!current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  const last = current.points[current.points.length - 1];
  const added = events.map(at);
  current.points.push(...added);
  if (current.shape === "rect") { // a preview on the view only, drawn for good on release
    show();
    viewCtx.globalAlpha = 0.8;
    fillRect(viewCtx, current);
    viewCtx.globalAlpha = 1;
    return;
  }
  paint({ ...current, points: [last, ...added] });
  show();
  sendWhileDrawing();
});

function finish() {
  if (!current) return;
  ops.push(current);
  undone = [];
  current = null;
  repaint();
  send();
}
view.addEventListener("pointerup", finish);
view.addEventListener("pointercancel", finish);

function clearLayer(which) {
  if (!visibleOps(which).length && !underlay(which)) return;
  ops.push({ clear: which });
  undone = [];
  repaint();
  send();
}

buttons.pen.addEventListener("click", () => select("pen"));
buttons.eraser.addEventListener("click", () => select("eraser"));
buttons.rect.addEventListener("click", () => select("rect"));
buttons.fill.addEventListener("click", () => select("fill"));
buttons.colour.addEventListener("click", () => select("colour"));
buttons.uncolour.addEventListener("click", () => select("uncolour"));
buttons.undo.addEventListener("click", () => { if (ops.length) { undone.push(ops.pop()); repaint(); send(); } });
buttons.redo.addEventListener("click", () => { if (undone.length) { ops.push(undone.pop()); repaint(); send(); } });
buttons.clear.addEventListener("click", () => clearLayer("ink"));
buttons.clearcolours.addEventListener("click", () => clearLayer("hint"));
picker.addEventListener("input", () => { hintColor = picker.value; select("colour"); });
colours.querySelectorAll("[data-swatch]").forEach((b) => b.addEventListener("click", () => {
  hintColor = picker.value = b.dataset.swatch;
  select("colour");
}));

// Shortcuts work anywhere on the Draw tab while it is shown, except in text fields.
const SIZE_STEP = 2;
document.addEventListener("keydown", (event) => {
  if (!element.isConnected || element.offsetParent === null) return;
  const target = event.target;
  if (target.closest && target.closest("input, textarea, select, [contenteditable=true]")) return;
  const key = event.key.toLowerCase();
  if (event.ctrlKey || event.metaKey) {
    if (key === "z") (event.shiftKey ? buttons.redo : buttons.undo).click();
    else if (key === "y") buttons.redo.click();
    else return;
  } else if (event.altKey) {
    return;
  } else if (key === "b") select("pen");
  else if (key === "e") select(tool === "colour" || tool === "uncolour" ? "uncolour" : "eraser");
  else if (key === "c" && setup.hints) select("colour");
  else if (key === "r" && setup.palette.length) select("rect");
  else if (key === "f" && setup.palette.length) select("fill");
  else if (key === "[" || key === "]") {
    const size = Number(sizeInput.value) + (key === "]" ? SIZE_STEP : -SIZE_STEP);
    sizeInput.value = Math.min(Number(sizeInput.max), Math.max(Number(sizeInput.min), size));
  } else return;
  event.preventDefault();
});

// Layout. On a wide screen the canvas, its tools and the result (with Generate below it)
// fit the first screen: both squares take the height left once the rows above and below them
// are placed. On a phone the canvas is as wide as the screen, the tools one row with the rest
// behind "⋯", and the result an inset over the canvas's corner that stays in view while one
// draws (a tap enlarges it).
const phone = matchMedia("(max-width: 640px)");
const MIN_SIZE = 240;
const menu = element.querySelector(".sk-menu");
const more = element.querySelector(".sk-more");
function openMenu(open) {
  element.querySelector(".sk").classList.toggle("menu-open", open);
  more.setAttribute("aria-expanded", String(open));
}
more.addEventListener("click", (event) => {
  event.stopPropagation();
  openMenu(more.getAttribute("aria-expanded") !== "true");
});
menu.addEventListener("click", (event) => { if (event.target.closest("button")) openMenu(false); });
document.addEventListener("pointerdown", (event) => {
  if (!event.target.closest || !event.target.closest(".sk-menu, .sk-more")) openMenu(false);
});

function fit() {
  if (!element.isConnected || element.offsetParent === null) return; // another tab is shown
  const root = document.documentElement;
  const result = document.querySelector("#result");
  const frame = result && result.querySelector(".rv-frame");
  const row = result && result.closest(".draw-row");
  if (phone.matches) {
    root.style.removeProperty("--draw-size");
    if (row) {
      const r = row.getBoundingClientRect(), c = view.getBoundingClientRect();
      row.style.setProperty("--inset-top", `${Math.round(c.top - r.top + 6)}px`);
      row.style.setProperty("--inset-right", `${Math.round(r.right - c.right + 6)}px`);
    }
    return;
  }
  const room = (el, column) => { // the height left for a square at `el` in its column
    const box = el.getBoundingClientRect(), col = column.getBoundingClientRect();
    const below = col.bottom - box.bottom;
    return window.innerHeight - 12 - (box.top + window.scrollY) - below;
  };
  const own = view.closest(".column");
  let size = own ? room(view, own) : 512;
  if (frame && frame.closest(".column")) size = Math.min(size, room(frame, frame.closest(".column")));
  root.style.setProperty("--draw-size", `${Math.max(MIN_SIZE, Math.min(512, Math.floor(size)))}px`);
}
window.addEventListener("resize", fit); // the window's height too, which the page's size may not follow
new ResizeObserver(() => requestAnimationFrame(fit)).observe(document.body); // rows of tools, tabs shown

openSocket();
watch("value", () => { if (props.value && props.value.setup) apply(props.value); });
if (props.value && props.value.setup) apply(props.value); else repaint();
