"""Where the time of one stroke goes: mouse-up to the result on screen, in segments.

Starts ``app.py`` (the default model unless ``--model``), draws ``--strokes`` strokes in
headless Chromium and, for each, reads the page's own clock (Performance API): the mouse-up,
the message that carries the finished drawing (over the page's WebSocket, or with
``--transport request`` a ``POST /api/v1/draw``), its answer (the model and the PNG; the
server's own share is the "ms" of the status line) and the result's decode. Prints one JSON object: per segment, the median and p90 in ms over the strokes.
Needs Chromium (``/usr/bin/chromium``) and ``playwright``.

    python scripts/bench_stroke.py --strokes 12
    python scripts/bench_stroke.py --strokes 12 --train app   # while the app fine-tunes a model
    python scripts/bench_stroke.py --strokes 12 --train cli   # while `python -m pix2pix train` runs beside it
    python scripts/bench_stroke.py --strokes 12 --transport request   # the page without WebSockets
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench_load import cli_paused, start_training
from browser_app import AppFailed, opened_page, served_app, stroke

WATCH = """() => {
  window.__shown = [];
  document.querySelector('#result').addEventListener('load', () => window.__shown.push(performance.now()), true);
}"""
# The page's own marks after the mouse-up (demo/static/canvas.js): the last drawing sent
# (the finished stroke's) and its answer, with the server's share of it.
SEGMENTS = """(up) => {
  const sent = performance.getEntriesByName('pix2pix:sent').filter((e) => e.startTime >= up - 1).pop();
  const answered = sent && performance.getEntriesByName('pix2pix:answered').find((e) => e.detail.seq === sent.detail);
  const shown = window.__shown.filter((t) => t >= up).pop();
  const ms = /· (\\d+) ms/.exec(document.querySelector('#draw-status')?.textContent || '');
  const timing = answered ? answered.detail.timing : {};
  const inServer = 'draw' in timing ? (timing.read || 0) + timing.draw + timing.png : null;
  return {sent: sent ? sent.startTime - up : null, answered: answered ? answered.startTime - up : null,
          shown: shown ? shown - up : null, server: ms ? Number(ms[1]) : null, route: inServer,
          transport: inServer === null ? null : answered.startTime - sent.startTime - inServer};
}"""


def measure(url: str, strokes: int, transport: str = "socket") -> list[dict]:
    rows = []
    # "request": a page whose browser has no WebSocket, so every drawing goes as a POST.
    with opened_page(url, init_script="delete window.WebSocket" if transport == "request" else None) as page:
        page.evaluate(WATCH)
        for i in range(strokes):
            y = 0.2 + 0.6 * i / max(strokes - 1, 1)
            up = stroke(page, [(0.2, y), (0.5, y + 0.05), (0.8, y)])
            page.wait_for_timeout(1500)  # past the last result of this stroke
            rows.append(page.evaluate(SEGMENTS, up))
    return rows


def summary(rows: list[dict]) -> dict:
    """Median and p90 (ms) of each segment: up→drawing sent, sent→answered (of which the
    route's own time, as its answer gives it: body read, drawing decoded, prepared and run,
    PNG made; of that prepare + model, from the status line; and the rest: the network,
    the web server and its threads), answered→decoded on screen, and the whole."""
    segs = {"mouse-up → drawing sent": ("sent", None), "sent → answered": ("answered", "sent"),
            "  of which in the route (server)": ("route", None),
            "    of which prepare + model": ("server", None),
            "  of which transport and web server": ("transport", None),
            "answered → shown": ("shown", "answered"), "mouse-up → shown": ("shown", None)}
    out = {}
    for name, (end, start) in segs.items():
        vals = sorted(r[end] - (r[start] if start else 0) for r in rows if r[end] is not None and (not start or r[start] is not None))
        if vals:
            out[name] = {"median": round(statistics.median(vals), 1), "p90": round(vals[int(0.9 * (len(vals) - 1))], 1)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strokes", type=int, default=12)
    ap.add_argument("--model", help="app.py --model (default: the app's default)")
    ap.add_argument("--port", type=int, default=7898)
    ap.add_argument("--app-arg", action="append", default=[], help="an extra argument for app.py (repeatable)")
    ap.add_argument("--train", choices=("none", "app", "cli"), default="none",
                    help="draw while a fine-tune runs: one started from the app's Fine-tune tab, or the command "
                         "line's in a process of its own (as bench_load.py --train)")
    ap.add_argument("--transport", choices=("socket", "request"), default="socket",
                    help="how the page sends its drawings: its WebSocket (as in a browser that has one), or plain "
                         "requests (as where a proxy refuses WebSockets)")
    args = ap.parse_args()
    report = {"model": args.model or "(default)", "training": args.train, "transport": args.transport}
    with tempfile.TemporaryDirectory(prefix="bench-stroke-") as tmp:
        tmp = Path(tmp)
        extra = ["--data-root", str(tmp / "data"), "--runs", str(tmp / "runs")] if args.train == "app" else []
        trainer = None
        try:
            with served_app(args.port, *(["--model", args.model] if args.model else []), *extra, *args.app_arg,
                            training=args.train == "app") as url:
                trainer = start_training(args.train, url, tmp)
                rows = measure(url, args.strokes, args.transport)
        except AppFailed as e:
            print(e, file=sys.stderr)
            return 1
        finally:
            if trainer is not None:
                trainer.terminate()
                trainer.wait(30)
                report["cli_paused_for_the_app"] = cli_paused(tmp)
    print(json.dumps({**report, "strokes": len(rows), "ms": summary(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
