"""Before and after of the page analysis on the test suite's designer pages (docs/pages/).

    python scripts/page_sheet.py docs/pages/before_after.png

Per row: the page, what the model was given before (everything on the page framed), and now
(the drawing alone, and what was left out).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench_imaging import lit_paper  # noqa: E402
from pages import annotated_page  # noqa: E402

from pix2pix.images.page import Page  # noqa: E402
from pix2pix.images.sketch import normalize_sketch  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/pages/before_after.png")
    cases = {"annotated page": annotated_page(), "photographed": lit_paper(annotated_page()),
             "two figures": annotated_page(figures=2), "hatched coat": annotated_page(hatching=18)}
    sheet = Image.new("RGB", (192 + 2 * 256, 24 + 280 * len(cases)), "white")
    d = ImageDraw.Draw(sheet)
    d.text((4, 4), "page", fill="black")
    d.text((200, 4), "before: the whole page", fill="black")
    d.text((456, 4), "now: the drawing alone", fill="black")
    for i, (name, page) in enumerate(cases.items()):
        y = 24 + 280 * i
        left = {}
        sheet.paste(page.resize((192, 256)), (0, y))
        sheet.paste(normalize_sketch(page), (192, y))
        sheet.paste(normalize_sketch(page, page=True, left_out=left), (448, y))
        d.text((4, y + 258), f"{name}: {Page(None, left).sentence()}", fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
