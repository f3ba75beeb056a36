"""Designer pages made in the test suite (we ship none): a pencil croquis with a garment on it,
handwritten-style and printed notes in two fonts, a ruled border, specks and a colour swatch."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

W, H = 1200, 1600
PENCIL = (95, 95, 95)


def croquis(d: ImageDraw.ImageDraw, cx: int, top: int, height: int, *, width: int = 3, hatching: int = 0) -> None:
    """A standing figure in a long coat, drawn with a pencil; ``hatching``: the coat shaded with
    lines this many pixels apart."""
    u = height / 8  # a head
    d.ellipse((cx - 0.35 * u, top, cx + 0.35 * u, top + u), outline=PENCIL, width=width)
    neck, shoulder, hem = top + 1.1 * u, top + 1.5 * u, top + 6.0 * u
    d.line((cx, top + u, cx, neck), fill=PENCIL, width=width)
    coat = [(cx - 0.9 * u, shoulder), (cx + 0.9 * u, shoulder), (cx + 1.2 * u, hem), (cx - 1.2 * u, hem)]
    d.polygon(coat, outline=PENCIL, width=width)
    for side in (-1, 1):  # sleeves to the wrist, legs to the feet
        d.line((cx + side * 0.9 * u, shoulder, cx + side * 1.3 * u, top + 4.2 * u), fill=PENCIL, width=width)
        d.line((cx + side * 0.35 * u, hem, cx + side * 0.4 * u, top + 7.8 * u), fill=PENCIL, width=width)
        d.line((cx + side * 0.4 * u, top + 7.8 * u, cx + side * 0.7 * u, top + 8 * u), fill=PENCIL, width=width)
    d.line((cx, shoulder, cx, hem), fill=PENCIL, width=width)  # the coat's front opening
    if hatching:
        y = shoulder + 0.6 * u
        while y < hem - 0.2 * u:
            d.line((cx - 0.7 * u, y, cx - 0.1 * u, y), fill=PENCIL, width=1)
            y += hatching


def notes(d: ImageDraw.ImageDraw, x: int, y: int, lines: list[str], size: int) -> None:
    font = ImageFont.load_default(size=size)
    for i, line in enumerate(lines):
        d.text((x, y + i * int(size * 1.5)), line, fill=(40, 40, 60), font=font)


def annotated_page(seed: int = 0, *, figures: int = 1, text: bool = True, border: bool = True, specks: bool = True,
                   swatch: bool = True, hatching: int = 0) -> Image.Image:
    r = random.Random(seed)
    page = Image.new("RGB", (W, H), (250, 249, 245))
    d = ImageDraw.Draw(page)
    for i in range(figures):
        croquis(d, 260 + i * 300, 220, 1100, hatching=hatching)
    if text:
        notes(d, 830, 300, ["A: long coat,", "sleeves to wrist", "wool, double-", "faced. B: pockets"], 30)
        notes(d, 830, 1150, ["ref. AW-27 / look 14", "lining: silk twill"], 18)
    if swatch:
        d.rectangle((860, 700, 960, 800), fill=(150, 60, 50))
        notes(d, 980, 735, ["rust"], 24)
    if border:
        d.rectangle((40, 40, W - 40, H - 40), outline=(30, 30, 30), width=4)
    if specks:
        for _ in range(6):
            x, y = r.randint(80, W - 80), r.randint(1300, H - 80)
            d.ellipse((x, y, x + 4, y + 4), fill=(60, 60, 60))
    return page
