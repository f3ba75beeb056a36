"""Draw sketches with the app's own pen in a real browser and grid what the model makes of them.

Starts ``app.py`` on the installed models, draws each sketch below with mouse strokes in
headless Chromium (the colour brush for the hinted ones), waits for the finished result and
writes a grid of (the canvas as the user sees it | the result) pairs: the model card's
``drawings.png``. Needs Chromium (``/usr/bin/chromium``) and the ``playwright`` package.

    python scripts/draw_grid.py --model fashion --out weights/fashion/drawings.png
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pix2pix.images.imaging import save_image  # noqa: E402
from browser_app import AppFailed, opened_page, served_app, shown_bytes, stroke  # noqa: E402

CELL = 256


def circle(cx: float, cy: float, r: float, n: int = 16) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(t), cy + r * math.sin(t)) for t in (2 * math.pi * i / n for i in range(n + 1))]


# Strokes as fractions of the canvas; colour scribbles as (swatch, strokes).
SNEAKER = [[(0.15, 0.65), (0.2, 0.5), (0.45, 0.42)], [(0.45, 0.42), (0.55, 0.28), (0.7, 0.3)],
           [(0.7, 0.3), (0.85, 0.55), (0.85, 0.68)], [(0.15, 0.68), (0.85, 0.68)], [(0.12, 0.72), (0.88, 0.72)],
           [(0.5, 0.4), (0.56, 0.45)], [(0.54, 0.36), (0.6, 0.41)], [(0.58, 0.32), (0.64, 0.37)]]
HANDBAG = [[(0.22, 0.4), (0.78, 0.4), (0.84, 0.8), (0.16, 0.8), (0.22, 0.4)],
           [(0.35, 0.4), (0.37, 0.25), (0.5, 0.18), (0.63, 0.25), (0.65, 0.4)], [(0.22, 0.5), (0.78, 0.5)]]
TSHIRT = [[(0.35, 0.2), (0.2, 0.28), (0.12, 0.45), (0.24, 0.5), (0.3, 0.4), (0.3, 0.85), (0.7, 0.85),
           (0.7, 0.4), (0.76, 0.5), (0.88, 0.45), (0.8, 0.28), (0.65, 0.2)],
          [(0.35, 0.2), (0.42, 0.26), (0.5, 0.28), (0.58, 0.26), (0.65, 0.2)]]
DRESS_FIGURE = [circle(0.5, 0.13, 0.055), [(0.47, 0.185), (0.47, 0.22)], [(0.53, 0.185), (0.53, 0.22)],
                [(0.47, 0.22), (0.39, 0.25), (0.41, 0.45), (0.33, 0.74), (0.67, 0.74), (0.59, 0.45), (0.61, 0.25),
                 (0.53, 0.22)],
                [(0.39, 0.25), (0.35, 0.4), (0.34, 0.55)], [(0.61, 0.25), (0.65, 0.4), (0.66, 0.55)],
                [(0.41, 0.45), (0.59, 0.45)], [(0.45, 0.74), (0.45, 0.95)], [(0.55, 0.74), (0.55, 0.95)]]
SHIRT_FIGURE = [circle(0.5, 0.12, 0.055), [(0.47, 0.175), (0.47, 0.21)], [(0.53, 0.175), (0.53, 0.21)],
                [(0.47, 0.21), (0.36, 0.24), (0.3, 0.5), (0.35, 0.51), (0.39, 0.34), (0.39, 0.55), (0.61, 0.55),
                 (0.61, 0.34), (0.65, 0.51), (0.7, 0.5), (0.64, 0.24), (0.53, 0.21)],
                [(0.47, 0.21), (0.5, 0.27), (0.53, 0.21)], [(0.5, 0.27), (0.5, 0.55)],
                [(0.39, 0.55), (0.38, 0.97)], [(0.61, 0.55), (0.62, 0.97)], [(0.5, 0.6), (0.5, 0.97)]]
DRAWINGS = [  # (name, lines, (swatch, colour strokes) or None, brush size of the colour strokes)
    ("sneaker", SNEAKER, None, 0),
    ("sneaker, red dabs", SNEAKER, ("#d62828", [[(0.45, 0.55), (0.55, 0.54)], [(0.62, 0.45), (0.68, 0.5)]]), 0),
    ("handbag, yellow", HANDBAG, ("#fcbf49", [[(0.42, 0.62), (0.58, 0.62)]]), 0),
    ("T-shirt", TSHIRT, None, 0),
    ("figure in a dress, blue", DRESS_FIGURE, ("#1d4ed8", [[(0.47, 0.32), (0.53, 0.32)], [(0.46, 0.6), (0.54, 0.6)]]), 0),
    ("figure in a shirt, red", SHIRT_FIGURE, ("#d62828", [[(0.45, 0.35), (0.55, 0.35)]]), 0),
    # Broad strokes, the way people paint: across the object and over its outline.
    ("sneaker, red strokes", SNEAKER, ("#d62828", [[(0.08, y), (0.92, y + 0.02)] for y in (0.45, 0.55, 0.63)]), 20),
    ("T-shirt, blue strokes", TSHIRT, ("#1d4ed8", [[(x, 0.12), (x + 0.02, 0.92)] for x in (0.35, 0.5, 0.65)]), 20),
    ("figure in a dress, green fill", DRESS_FIGURE,
     ("#2a9d8f", [[(0.42, 0.35), (0.58, 0.38), (0.41, 0.45), (0.6, 0.5), (0.4, 0.58), (0.62, 0.66), (0.42, 0.74)]]), 24),
]
CANVAS_PNG = "() => document.querySelector('#sketch canvas').toDataURL('image/png')"
RESULT_SRC = "() => document.querySelector('#result img')?.src ?? null"


def settled_result(page) -> Image.Image:
    """The result once no newer one has come for a second and a half."""
    page.wait_for_timeout(500)
    src = None
    while src is None or src != page.evaluate(RESULT_SRC):
        src = page.evaluate(RESULT_SRC)
        page.wait_for_timeout(1500)
    page.wait_for_function("() => { const i = document.querySelector('#result img');"
                           " return i && i.complete && i.naturalWidth > 0; }", timeout=60_000)
    return Image.open(io.BytesIO(shown_bytes(page, src))).convert("RGB")


def data_url_image(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")


def draw_all(url: str) -> list[tuple[str, Image.Image, Image.Image]]:
    out = []
    with opened_page(url) as page:
        for name, strokes, colour, size in DRAWINGS:
            page.locator("#sketch [data-action='clear']").click()
            page.locator("#sketch [data-action='clearcolours']").click()
            page.locator("#sketch [data-action='pen']").click()
            for points in strokes:
                stroke(page, points, steps=6)
            if colour:
                page.locator(f"#sketch [data-swatch='{colour[0]}']").click()
                if size:
                    page.locator("#sketch .sk-size").fill(str(size))
                for points in colour[1]:
                    stroke(page, points, steps=6)
                page.locator("#sketch [data-action='colour']").click()  # the brush's own size again next time
                page.locator("#sketch .sk-size").fill("16")
            result = settled_result(page)
            drawing = data_url_image(page.evaluate(CANVAS_PNG))
            out.append((name, drawing, result))
            print(f"drew {name}")
    return out


def grid(cells: list[tuple[str, Image.Image, Image.Image]], per_row: int = 3) -> Image.Image:
    rows = -(-len(cells) // per_row)
    label = 18
    sheet = Image.new("RGB", (per_row * 2 * CELL, rows * (CELL + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (name, drawing, result) in enumerate(cells):
        x, y = (i % per_row) * 2 * CELL, (i // per_row) * (CELL + label)
        sheet.paste(drawing.resize((CELL, CELL), Image.LANCZOS), (x, y + label))
        sheet.paste(result.resize((CELL, CELL), Image.LANCZOS), (x + CELL, y + label))
        draw.text((x + 4, y + 3), name, fill="black")
    return sheet


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fashion")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--port", type=int, default=7899)
    ap.add_argument("--runs", type=Path, help="a runs folder whose models the app lists too (default: none)")
    args = ap.parse_args()
    runs = ["--runs", str(args.runs)] if args.runs else []
    try:
        with served_app(args.port, "--model", args.model, *runs) as url:
            cells = draw_all(url)
    except AppFailed as e:
        print(e, file=sys.stderr)
        return 1
    save_image(grid(cells), args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
