"""A designer's page: the drawing framed alone, what was left out said, hatching kept as lines."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, cli_env
from pages import annotated_page
from pix2pix.images.page import Page, find_drawing
from pix2pix.images.sketch import normalize_sketch

sys.path.insert(0, str(ROOT / "scripts"))
from bench_imaging import drawings as all_drawings, lit_paper  # noqa: E402

DRAWINGS = {k: v for k, v in all_drawings().items() if k != "annotated_page_24mp"}  # made once


def ink_box(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the lines' bounding box."""
    ink = np.asarray(img.convert("L")) < 128
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    return cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


def test_an_annotated_page_is_framed_on_the_figure_alone_and_says_what_it_left_out():
    left_out = {}
    seen = normalize_sketch(annotated_page(), page=True, left_out=left_out)
    w, h = ink_box(seen)
    assert w / h < 0.55 and h >= 200  # a standing figure, filling the frame's height within the margin
    assert left_out == {"text block": 2, "border": 1, "swatch": 1, "speck": 6}
    assert Page(None, left_out).sentence() == "left out 2 text blocks, a border, a swatch and 6 specks"
    whole = normalize_sketch(annotated_page())  # everything kept: the page's border frames it, the figure is small
    assert ink_box(whole)[0] / ink_box(whole)[1] > 0.7


def test_a_photographed_page_with_notes_is_framed_on_the_figure_too():
    left_out = {}
    seen = normalize_sketch(lit_paper(annotated_page().convert("RGB")), page=True, left_out=left_out)
    w, h = ink_box(seen)
    assert w / h < 0.55 and h >= 200 and left_out.get("text block") == 2


def test_two_figures_on_a_page_stay_together():
    left_out = {}
    w, h = ink_box(normalize_sketch(annotated_page(figures=2), page=True, left_out=left_out))
    assert 0.5 < w / h < 0.8 and left_out["text block"] == 2  # both figures (one alone is under 0.4), no notes


def test_hatching_three_pixels_apart_stays_lines():
    """Pencil hatching on a coat, 3 px apart once framed at 256: lines with paper between them."""
    seen = np.asarray(normalize_sketch(annotated_page(hatching=18), page=True).convert("L"))
    # a column through the hatched half of the coat
    col = seen[100:190, 112]
    dark = col < 128
    runs = np.count_nonzero(dark[1:] & ~dark[:-1])
    assert runs >= 15 and 0.3 < dark.mean() < 0.8  # many separate lines, not one filled area


@pytest.mark.parametrize("name", sorted(DRAWINGS))
def test_a_drawing_with_nothing_else_on_the_page_is_framed_exactly_as_before(name):
    img = DRAWINGS[name]
    left_out = {}
    after = normalize_sketch(img, page=True, left_out=left_out)
    assert left_out == {} and np.array_equal(np.asarray(after), np.asarray(normalize_sketch(img)))


def test_the_example_sketches_are_framed_exactly_as_before():
    examples = sorted(p for p in (ROOT / "demo" / "examples").glob("fashion_*.png") if ".hints" not in p.name)
    assert len(examples) >= 10
    for path in examples:
        img = Image.open(path)
        left_out = {}
        after = normalize_sketch(img, page=True, left_out=left_out)
        assert left_out == {}, path.name
        assert np.array_equal(np.asarray(after), np.asarray(normalize_sketch(img))), path.name


def test_a_drawing_of_separate_parts_is_one_drawing():
    """Trousers drawn as two legs that do not touch, and a figure's few separate strokes."""
    mask = np.zeros((512, 512), bool)
    mask[60:460, 150:156] = mask[60:460, 240:246] = True  # left leg
    mask[60:460, 280:286] = mask[60:460, 370:376] = True  # right leg
    mask[60:66, 150:376] = False
    page = find_drawing(mask)
    assert page.left_out == {} and np.array_equal(page.drawing, mask)


def test_generate_leaves_notes_out_unless_told_to_keep_everything(tmp_path):
    annotated_page().save(tmp_path / "page.png")
    out = {}
    for flag in ([], ["--keep-everything"]):
        done = subprocess.run([sys.executable, "-m", "pix2pix", "generate", str(tmp_path / "page.png"), "--model",
                               "fashion", "--output", str(tmp_path / f"out{len(flag)}.png"), *flag],
                              env=cli_env(), capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        out[bool(flag)] = done.stderr
    assert "left out 2 text blocks, a border, a swatch and 6 specks" in out[False]
    assert "left out" not in out[True]
