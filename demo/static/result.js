// js_on_load script for the Draw tab's result box (demo/result_view.py): shows what the
// canvas announces with `pix2pix:result` events.
const frame = element.querySelector(".rv-frame");
const empty = element.querySelector(".rv-empty");
const statusLine = element.querySelector(".rv-status");
const download = element.querySelector(".rv-download");
const full = element.querySelector(".rv-full");
const pair = element.querySelector(".rv-pair");
let shown = null; // the blob URL on screen, released when the next one has loaded

// The status texts are plain sentences with a little Markdown (**bold**, `code`).
function markup(text) {
  const escaped = text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  return escaped.replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>").replace(/`(.+?)`/g, "<code>$1</code>");
}

function showImage(url, png) {
  let img = frame.querySelector("img");
  if (!img) {
    img = document.createElement("img");
    img.alt = "Result";
    frame.prepend(img);
  }
  const previous = shown;
  shown = url;
  img.onload = () => { if (previous && previous !== shown) URL.revokeObjectURL(previous); };
  img.src = url;
  download.href = png || url; // the PNG the server keeps; the JPEG shown where it has none
  download.hidden = false;
  full.hidden = false;
  empty.hidden = true;
  // A result replaces any error left on screen from before (an upload that failed, say).
  document.querySelectorAll(".toast-body.error .toast-close").forEach((b) => b.click());
}

function clear() {
  frame.querySelector("img")?.remove();
  if (shown) URL.revokeObjectURL(shown);
  shown = null;
  download.hidden = full.hidden = pair.hidden = true;
  download.removeAttribute("href");
  empty.hidden = false;
}

document.addEventListener("pix2pix:result", (event) => {
  const detail = event.detail || {};
  if (detail.clear) clear();
  if (detail.url) showImage(detail.url, detail.png);
  if (detail.pair !== undefined) {
    pair.hidden = !detail.pair;
    if (detail.pair) pair.href = detail.pair;
  }
  if (detail.status !== undefined) {
    statusLine.innerHTML = markup(detail.status || statusLine.dataset.hint);
    statusLine.classList.toggle("error", !!detail.error);
  }
});

full.addEventListener("click", () => frame.requestFullscreen?.());
// On a phone the box is an inset over the canvas (see demo/style.css): a tap enlarges it.
const phone = matchMedia("(max-width: 640px)");
frame.addEventListener("click", () => {
  if (phone.matches) element.closest("#result")?.classList.toggle("big");
});
