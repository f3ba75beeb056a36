"""Time the imaging pipeline: sketch normalization and outline extraction.

Cases: ``normalize_sketch`` on a 512x512 canvas drawing and on a 24-megapixel photo of a
pencil sketch under uneven light (both synthetic), and ``extract_parts`` on real product
photos (Fashion Product Images, restored from their squash to 3:4). Prints the median time
per call in ms as JSON.

With ``--against ROOT`` the cases run in child processes, alternately on this checkout and
on ROOT (another checkout of the project, e.g. ``git worktree add /tmp/before HEAD``), so
both see the same machine load; ``ratio`` is the median of the per-round ratios of the
medians (this / ROOT: below 1 is faster). ``--sheet`` then also writes a contact sheet:
per photo or drawing, the input, ROOT's result and this checkout's result side by side.

    python scripts/bench_imaging.py                       # this checkout only
    python scripts/bench_imaging.py --against /tmp/before --rounds 5 \\
        --sheet test-output/imaging_contact_sheet.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "data" / "fashion-products" / "images"
# Validation photos of the shipped fashion model: shoes, sandal, bags, garments.
PHOTO_IDS = ["10125", "11831", "13980", "14805", "10775", "12374", "13262", "12830"]
BENCH_PHOTOS = 4  # the first ones are timed; all go on the contact sheet
CELL = 192


# --- inputs --------------------------------------------------------------------------------


def annotated_page() -> Image.Image:
    """A designer's page at 24 megapixels (4000 x 6000): a pencil croquis, notes in two fonts,
    a ruled border, a swatch and specks (tests/pages.py, enlarged)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pages import annotated_page as page

    return page().resize((4000, 6000), Image.Resampling.BILINEAR)


def house(size, box, width, ink=(0, 0, 0), paper=(255, 255, 255), mode="RGB", ss=4) -> Image.Image:
    """A line drawing (roof, walls, window, door, a curl of smoke), anti-aliased by supersampling."""
    big = Image.new(mode, (size[0] * ss, size[1] * ss), paper)
    d = ImageDraw.Draw(big)
    left, top, right, bottom = (v * ss for v in box)
    w, h, eaves = right - left, bottom - top, top + 0.4 * (bottom - top)
    width *= ss
    d.rectangle((left, eaves, right, bottom), outline=ink, width=width)
    d.line((left, eaves, left + w / 2, top, right, eaves), fill=ink, width=width, joint="curve")
    d.ellipse((left + 0.15 * w, top + 0.55 * h, left + 0.4 * w, top + 0.8 * h), outline=ink, width=width)
    d.line((left + 0.6 * w, bottom, left + 0.6 * w, top + 0.6 * h, left + 0.85 * w, top + 0.6 * h,
            left + 0.85 * w, bottom), fill=ink, width=width)
    d.arc((left + 0.7 * w, top - 0.05 * h, left + 0.9 * w, top + 0.2 * h), 180, 30, fill=ink, width=width)
    return big.reduce(ss) if ss > 1 else big


def lit_paper(lines: Image.Image, seed: int = 0) -> Image.Image:
    """The drawing as grey pencil on greyish paper, photographed under a gradient and a hot spot."""
    h, w = lines.height, lines.width
    value = np.asarray(lines.convert("L"), np.float32) / 255
    y, x = np.ogrid[0:h, 0:w]
    light = 0.4 + 0.45 * (x / w) + 0.25 * np.exp(-(((x - 0.7 * w) / w) ** 2 + ((y - 0.3 * h) / w) ** 2) / 0.09)
    grey = 255 * light * (0.3 + 0.5 * value) + np.random.default_rng(seed).normal(0, 3, (h, w))
    grey = np.clip(grey, 0, 255).astype(np.float32)
    return Image.fromarray(np.dstack([grey, grey * 0.96, grey * 0.88]).astype(np.uint8))


def drawings() -> dict[str, Image.Image]:
    """Name -> a kind of drawing the app receives; the first and the last are timed."""
    return {
        "pen_canvas_512": house((512, 512), (96, 96, 416, 416), 6),
        "pencil_uneven_light": lit_paper(house((640, 480), (150, 70, 490, 410), 2)),
        "transparent_rgba": house((512, 512), (80, 60, 440, 400), 5, (0, 0, 0, 255), (0, 0, 0, 0), "RGBA"),
        "white_on_black": house((512, 512), (96, 96, 416, 416), 8, (240, 240, 240), (10, 10, 10)),
        "tiny_off_centre": house((512, 512), (20, 420, 80, 450), 2),
        "photo_24mp": lit_paper(house((6000, 4000), (1500, 500, 4500, 3500), 12, ss=1)),
        "annotated_page_24mp": annotated_page(),
    }


def photo_paths(folder: Path) -> list[Path]:
    paths = [folder / f"{i}.jpg" for i in PHOTO_IDS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"missing product photos in {folder}: {missing} (pass --photos)")
    return paths


# --- one checkout (child) --------------------------------------------------------------------


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def run_cases(photos: list[Path], repeat: int, out: Path | None) -> dict:
    import pix2pix

    try:
        from pix2pix.images.outlines import extract_parts
        from pix2pix.images.pairs import OutlinePairMaker, unsquash
        from pix2pix.images.sketch import normalize_sketch
    except ImportError:  # a checkout from before the library was grouped into packages
        from pix2pix.outlines import extract_parts
        from pix2pix.sketch import normalize_sketch
        try:
            from pix2pix.pairs import OutlinePairMaker, unsquash
        except ImportError:  # from before outlines.py was split
            from pix2pix.outlines import OutlinePairMaker, unsquash
    import inspect

    # As the app prepares a drawing: with the page analysis where the checkout has one.
    page = {"page": True} if "page" in inspect.signature(normalize_sketch).parameters else {}

    def app_normalize(img):
        return normalize_sketch(img, **page)

    sketches = drawings()
    photos_rgb = [unsquash(Image.open(p).convert("RGB")) for p in photos[:BENCH_PHOTOS]]
    result = {
        "module": str(Path(pix2pix.__file__).parent),
        "sketch_canvas_512": _median_ms(lambda: app_normalize(sketches["pen_canvas_512"]), repeat),
        "sketch_photo_24mp": _median_ms(lambda: app_normalize(sketches["photo_24mp"]), max(3, repeat // 3)),
        "annotated_page_24mp": _median_ms(lambda: app_normalize(sketches["annotated_page_24mp"]), max(3, repeat // 3)),
        "extract_parts_photo": statistics.median(
            _median_ms(lambda p=p: extract_parts(p), max(3, repeat // 2)) for p in photos_rgb
        ),
    }
    if out is not None:
        for name, img in sketches.items():
            app_normalize(img).save(out / f"{name}.png")
        maker = OutlinePairMaker(256, augment=False, aspect=3 / 4)
        for p in photos:
            maker(p)[0].save(out / f"{p.stem}.png")
    return result


# --- comparison (parent) ---------------------------------------------------------------------


def _child(root: Path, args, out: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--child", "--repeat", str(args.repeat), "--photos", str(args.photos)]
    if out is not None:
        cmd += ["--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _cell(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA":  # show transparency as light grey
        img = Image.alpha_composite(Image.new("RGBA", img.size, (200, 200, 200, 255)), img)
    img = img.convert("RGB")
    img.thumbnail((CELL, CELL))
    cell = Image.new("RGB", (CELL, CELL), (235, 235, 235))
    cell.paste(img, ((CELL - img.width) // 2, (CELL - img.height) // 2))
    return cell


def contact_sheet(inputs: dict[str, Image.Image], before: Path, after: Path, path: Path) -> None:
    """Rows of (input, before, after); two blocks of rows side by side."""
    names = list(inputs)
    rows = (len(names) + 1) // 2
    sheet = Image.new("RGB", (6 * CELL + 16, rows * (CELL + 14) + 14), "white")
    d = ImageDraw.Draw(sheet)
    for block in range(2):
        for col, title in enumerate(("input", "before", "after")):
            d.text((block * (3 * CELL + 16) + col * CELL + 4, 2), title, fill="black")
    for i, name in enumerate(names):
        x, y = (i // rows) * (3 * CELL + 16), 14 + (i % rows) * (CELL + 14)
        cells = [inputs[name], Image.open(before / f"{name}.png"), Image.open(after / f"{name}.png")]
        for col, img in enumerate(cells):
            sheet.paste(_cell(img), (x + col * CELL, y))
        d.text((x + 4, y + CELL), name, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def compare(args) -> dict:
    per_round: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp, "before"), Path(tmp, "after")]
        for d in dirs:
            d.mkdir()
        for r in range(args.rounds):
            sheet_dirs = dirs if (args.sheet and r == 0) else [None, None]
            order = [(0, args.against), (1, ROOT)]
            if r % 2:
                order.reverse()
            got = {side: _child(root, args, sheet_dirs[side]) for side, root in order}
            for case, value in got[1].items():
                if case != "module":
                    per_round.setdefault(case, []).append((got[0][case], value))
        if args.sheet:
            inputs = {**{p.stem: Image.open(p) for p in photo_paths(args.photos)}, **drawings()}
            contact_sheet(inputs, dirs[0], dirs[1], args.sheet)
    report = {"before": str(args.against), "after": str(ROOT), "rounds": args.rounds}
    for case, pairs in per_round.items():
        report[case] = {
            "before_ms": round(statistics.median(b for b, _ in pairs), 2),
            "after_ms": round(statistics.median(a for _, a in pairs), 2),
            "ratio": round(statistics.median(a / b for b, a in pairs), 3),
        }
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=PHOTOS, help="folder of the Fashion Product Images jpgs")
    ap.add_argument("--repeat", type=int, default=15, help="calls per case (fewer for the slow ones)")
    ap.add_argument("--against", type=Path, help="another checkout to compare with, round by round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sheet", type=Path, help="with --against: write a before/after contact sheet here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.against is not None:
        report = compare(args)
    else:
        sys.path.append(str(ROOT))  # after PYTHONPATH, so a child runs the checkout it was given
        report = run_cases(photo_paths(args.photos), args.repeat, args.out)
    json.dump(report, sys.stdout, indent=None if args.child else 2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
