// The drawing canvas of the Draw tab (see demo/canvas.py). Runs once per page as a gr.HTML
// js_on_load script: `element`, `props`, `trigger` and `watch` come from Gradio.
//
// Strokes are kept as a list of operations, so undo/redo/clear are a replay. After each
// change the canvas is sent as one small PNG data URL with a "stroke" event: one request,
// no uploads, which keeps the stroke-to-result time low.
const canvas = element.querySelector("canvas");
const ctx = canvas.getContext("2d");
const palette = element.querySelector(".sk-palette");
const sizeInput = element.querySelector(".sk-size");
const buttons = Object.fromEntries([...element.querySelectorAll("[data-action]")].map((b) => [b.dataset.action, b]));

let setup = { fill: "#ffffff", pen: "#000000", size: 6, palette: [] };
let background = null; // an Image drawn under the strokes (a loaded example)
let ops = []; // {color, size, points} or {clear: true}
let undone = [];
let current = null;
let tool = "pen";
let color = setup.pen;
let sent = 0;

function visibleOps() {
  let start = 0;
  ops.forEach((op, i) => { if (op.clear) start = i + 1; });
  return ops.slice(start);
}

function paint(op) {
  const pts = op.points;
  ctx.strokeStyle = ctx.fillStyle = op.color;
  ctx.lineWidth = op.size;
  ctx.lineCap = ctx.lineJoin = "round";
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0], pts[0][1], op.size / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function repaint() {
  ctx.fillStyle = setup.fill;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (background && !ops.some((op) => op.clear)) {
    ctx.imageSmoothingEnabled = setup.palette.length === 0; // label maps keep exact colours
    ctx.drawImage(background, 0, 0, canvas.width, canvas.height);
  }
  visibleOps().forEach(paint);
  buttons.undo.disabled = ops.length === 0;
  buttons.redo.disabled = undone.length === 0;
}

function send() {
  // Later strokes replace earlier ones in the queue (trigger_mode="always_last").
  props.value = { png: canvas.toDataURL("image/png"), stroke: ++sent };
  trigger("stroke");
}

function select(newTool, newColor) {
  tool = newTool;
  if (newColor) color = newColor;
  buttons.pen.classList.toggle("on", tool === "pen");
  buttons.eraser.classList.toggle("on", tool === "eraser");
  palette.querySelectorAll("button").forEach((b) => b.classList.toggle("on", tool === "pen" && b.dataset.color === color));
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
}

function apply(value) {
  setup = { ...setup, ...value.setup };
  ops = [];
  undone = [];
  sizeInput.value = setup.size;
  buildPalette();
  select("pen", setup.pen);
  background = null;
  if (!value.image) {
    repaint();
    if (value.generate) send();
    return;
  }
  const img = new Image();
  img.onload = () => { background = img; repaint(); send(); };
  img.src = value.image;
}

function at(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * (canvas.width / r.width), (event.clientY - r.top) * (canvas.height / r.height)];
}

canvas.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  canvas.setPointerCapture(event.pointerId);
  current = { color: tool === "eraser" ? setup.fill : color, size: Number(sizeInput.value), points: [at(event)] };
  paint(current);
});

canvas.addEventListener("pointermove", (event) => {
  if (!current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  const last = current.points[current.points.length - 1];
  const added = events.map(at);
  current.points.push(...added);
  paint({ ...current, points: [last, ...added] });
});

function finish() {
  if (!current) return;
  ops.push(current);
  undone = [];
  current = null;
  repaint();
  send();
}
canvas.addEventListener("pointerup", finish);
canvas.addEventListener("pointercancel", finish);

buttons.pen.addEventListener("click", () => select("pen"));
buttons.eraser.addEventListener("click", () => select("eraser"));
buttons.undo.addEventListener("click", () => { if (ops.length) { undone.push(ops.pop()); repaint(); send(); } });
buttons.redo.addEventListener("click", () => { if (undone.length) { ops.push(undone.pop()); repaint(); send(); } });
buttons.clear.addEventListener("click", () => {
  if (!visibleOps().length && !background) return;
  ops.push({ clear: true });
  undone = [];
  repaint();
  send();
});
element.addEventListener("keydown", (event) => {
  if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") return;
  event.preventDefault();
  (event.shiftKey ? buttons.redo : buttons.undo).click();
});

watch("value", () => { if (props.value && props.value.setup) apply(props.value); });
if (props.value && props.value.setup) apply(props.value); else repaint();
