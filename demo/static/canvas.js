// The drawing canvas of the Draw tab (see demo/canvas.py). Runs once per page as a gr.HTML
// js_on_load script: `element`, `props`, `trigger` and `watch` come from Gradio.
//
// Two layers: the ink (pen and eraser: what the model reads as the sketch or label map)
// and, for models that take colour hints, a colour layer painted with the Colour brush,
// shown half-transparent over the ink and sent as a separate transparent PNG. Strokes of
// both are one list of operations, so undo/redo/clear are a replay. After each change the
// layers are sent as small PNG data URLs with a "stroke" event: one request, no uploads.
const view = element.querySelector("canvas");
const viewCtx = view.getContext("2d");
const palette = element.querySelector(".sk-palette");
const colours = element.querySelector(".sk-colours");
const picker = element.querySelector(".sk-colour");
const sizeInput = element.querySelector(".sk-size");
const activeName = element.querySelector(".sk-active");
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

let setup = { fill: "#ffffff", pen: "#000000", size: 6, palette: [], hints: false, key: "" };
let background = null; // an Image drawn under the strokes (a loaded example)
let ops = []; // {layer: "ink"|"hint", color, size, erase, points} or {clear: "ink"|"hint"}
let undone = [];
let current = null;
let tool = "pen"; // pen | eraser | colour | uncolour
let color = setup.pen;
let hintColor = picker.value;
let sent = 0;
const HINT_SIZE = 16; // the colour brush starts broad: hints are areas of colour, not lines
const sizes = { ink: setup.size, hint: HINT_SIZE }; // each brush keeps its own size
const layerOf = (t) => (t === "colour" || t === "uncolour" ? "hint" : "ink");
const kept = {}; // drawings per model kind (setup.key): switching models never loses one

function visibleOps(which) {
  let start = 0;
  ops.forEach((op, i) => { if (op.clear === which) start = i + 1; });
  return ops.slice(start).filter((op) => op.layer === which);
}

function paint(op) {
  const ctx = op.layer === "hint" ? hintCtx : inkCtx;
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

function show() {
  viewCtx.clearRect(0, 0, view.width, view.height);
  viewCtx.drawImage(ink, 0, 0);
  if (setup.hints) {
    viewCtx.globalAlpha = 0.55;
    viewCtx.drawImage(hint, 0, 0);
    viewCtx.globalAlpha = 1;
  }
}

function repaint() {
  inkCtx.fillStyle = setup.fill;
  inkCtx.fillRect(0, 0, ink.width, ink.height);
  if (background && !ops.some((op) => op.clear === "ink")) {
    inkCtx.imageSmoothingEnabled = setup.palette.length === 0; // label maps keep exact colours
    inkCtx.drawImage(background, 0, 0, ink.width, ink.height);
  }
  visibleOps("ink").forEach(paint);
  hintCtx.clearRect(0, 0, hint.width, hint.height);
  visibleOps("hint").forEach(paint);
  show();
  buttons.undo.disabled = ops.length === 0;
  buttons.redo.disabled = undone.length === 0;
}

function send() {
  // Later strokes replace earlier ones in the queue (trigger_mode="always_last").
  const hints = setup.hints && visibleOps("hint").length ? hint.toDataURL("image/png") : null;
  props.value = { png: ink.toDataURL("image/png"), hints, stroke: ++sent };
  trigger("stroke");
}

function select(newTool, newColor) {
  sizes[layerOf(tool)] = Number(sizeInput.value);
  tool = newTool;
  sizeInput.value = sizes[layerOf(tool)];
  if (newColor && tool === "pen") color = newColor;
  for (const name of ["pen", "eraser", "colour", "uncolour"]) buttons[name].classList.toggle("on", tool === name);
  palette.querySelectorAll("button").forEach((b) => b.classList.toggle("on", tool === "pen" && b.dataset.color === color));
  const label = setup.palette.find((c) => c.color === color);
  activeName.textContent = label && tool === "pen" ? `Brush: ${label.name}` : "";
}

function buildPalette() {
  palette.replaceChildren(...setup.palette.map((c) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.color = c.color;
    b.title = c.name;
    b.innerHTML = `<i style="background:${c.color}"></i>`;
    b.append(c.name);
    b.addEventListener("click", () => select("pen", c.color));
    return b;
  }));
  palette.hidden = setup.palette.length === 0;
  colours.hidden = !setup.hints;
}

function apply(value) {
  if (setup.key) kept[setup.key] = { ops, undone, background };
  setup = { ...setup, ...value.setup };
  const old = !value.image && kept[setup.key];
  ({ ops, undone, background } = old || { ops: [], undone: [], background: null });
  tool = "pen";
  sizeInput.value = sizes.ink = setup.size;
  buildPalette();
  select("pen", setup.pen);
  if (!value.image) {
    repaint();
    if (value.generate || (old && ops.length)) send();
    return;
  }
  const img = new Image();
  img.onload = () => { background = img; repaint(); send(); };
  img.src = value.image;
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
    layer: onHint ? "hint" : "ink", erase: tool === "uncolour", size: Number(sizeInput.value), points: [at(event)],
    color: tool === "eraser" ? setup.fill : tool === "colour" ? hintColor : tool === "uncolour" ? "#000" : color,
  };
  paint(current);
  show();
});

view.addEventListener("pointermove", (event) => {
  if (!current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  const last = current.points[current.points.length - 1];
  const added = events.map(at);
  current.points.push(...added);
  paint({ ...current, points: [last, ...added] });
  show();
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
  if (!visibleOps(which).length && !(which === "ink" && background)) return;
  ops.push({ clear: which });
  undone = [];
  repaint();
  send();
}

buttons.pen.addEventListener("click", () => select("pen"));
buttons.eraser.addEventListener("click", () => select("eraser"));
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
  else if (key === "[" || key === "]") {
    const size = Number(sizeInput.value) + (key === "]" ? SIZE_STEP : -SIZE_STEP);
    sizeInput.value = Math.min(Number(sizeInput.max), Math.max(Number(sizeInput.min), size));
  } else return;
  event.preventDefault();
});

watch("value", () => { if (props.value && props.value.setup) apply(props.value); });
if (props.value && props.value.setup) apply(props.value); else repaint();
