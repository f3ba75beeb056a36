"""Sketch normalization: every kind of drawing a user might give ends up as a clean, centred,
black-line-on-white square. The inputs are made up here with PIL drawing."""

from __future__ import annotations

import io
from dataclasses import astuple

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from pix2pix.images.sketch import (
    STROKE_PX,
    Frame,
    SketchError,
    drawn_region,
    editor_to_image,
    find_frame,
    frame_image,
    ink_mask,
    normalize_sketch,
)

MARGIN = 0.08
SS = 4  # supersampling for anti-aliased test drawings, like a browser canvas's strokes


def house(draw: ImageDraw.ImageDraw, box, width: int, ink) -> None:
    """A simple line drawing (roof, walls, window, door) filling ``box``."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    eaves = top + 0.4 * h
    draw.rectangle((left, eaves, right, bottom), outline=ink, width=width)
    draw.line((left, eaves, left + w / 2, top, right, eaves), fill=ink, width=width, joint="curve")
    draw.ellipse((left + 0.15 * w, top + 0.55 * h, left + 0.4 * w, top + 0.8 * h), outline=ink, width=width)
    door_left, door_right, door_top = left + 0.6 * w, left + 0.85 * w, top + 0.6 * h
    door = (door_left, bottom, door_left, door_top, door_right, door_top, door_right, bottom)
    draw.line(door, fill=ink, width=width)


def drawing(
    size=(512, 512), box=(96, 96, 416, 416), width=6, ink=(0, 0, 0), paper=(255, 255, 255), mode="RGB", ss=SS
) -> Image.Image:
    """A house on plain paper, anti-aliased by drawing it ``ss`` times larger and reducing."""
    big = Image.new(mode, (size[0] * ss, size[1] * ss), paper)
    house(ImageDraw.Draw(big), [v * ss for v in box], width * ss, ink)
    return big.reduce(ss) if ss > 1 else big


def lum(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L")).astype(np.int32)


def ink_box(img: Image.Image) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(lum(img) < 128)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def near(mask: np.ndarray, size: int = 7) -> np.ndarray:
    """Pixels within size // 2 of the mask."""
    grown = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(size))
    return np.asarray(grown) > 0


def runs(line: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], line.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def assert_clean(out: Image.Image, size: int = 256, margin: float = MARGIN) -> None:
    """Contract of a normalized sketch: solid dark lines on white paper, centred, filling the frame."""
    assert out.mode == "RGB" and out.size == (size, size)
    a = lum(out)
    for corner in (a[:8, :8], a[:8, -8:], a[-8:, :8], a[-8:, -8:]):
        assert corner.min() > 240
    ink = a < 128
    assert 0.01 < ink.mean() < 0.25
    assert np.median(a[ink]) < 30  # solid, not grey
    assert ((a > 60) & (a < 200)).mean() < 0.03  # black and white, light anti-aliasing only
    left, top, right, bottom = ink_box(out)
    assert abs((left + right) / 2 - size / 2) <= 3 and abs((top + bottom) / 2 - size / 2) <= 3
    assert max(right - left, bottom - top) == pytest.approx((1 - 2 * margin) * size, abs=6)


def stroke_widths(out: Image.Image) -> np.ndarray:
    """Widths of the vertical lines crossed by two rows: through the window's centre and below it."""
    ink = lum(out) < 128
    n = ink.shape[0]
    return np.concatenate([runs(ink[round(0.65 * n)]), runs(ink[round(0.85 * n)])])


def test_clean_canvas_drawing():
    out, frame = normalize_sketch(drawing(), return_frame=True)
    assert_clean(out)
    assert isinstance(frame, Frame)
    assert frame.side == pytest.approx(326 / (1 - 2 * MARGIN), rel=0.03)


def test_transparent_background_is_paper():
    # A Gradio RGBA layer: transparent paper whose colour underneath is black (0, 0, 0, 0).
    strokes = drawing(ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA")
    assert_clean(normalize_sketch(strokes))


@pytest.mark.parametrize("paper, ink", [((0, 0, 0), (255, 255, 255)), ((25, 45, 35), (225, 225, 215))])
def test_light_lines_on_dark_background_are_inverted(paper, ink):
    out = normalize_sketch(drawing(width=8, ink=ink, paper=paper))
    assert_clean(out)


def photographed(size=(640, 480), exposure=1.0, seed=0) -> Image.Image:
    """Greyish paper photographed under uneven light: a gradient plus an off-centre hot spot, and noise."""
    w, h = size
    lines = lum(drawing(size, box=(150, 70, 490, 410), width=4)) / 255.0
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    hot_spot = np.exp(-((x - 0.7 * w) ** 2 + (y - 0.3 * h) ** 2) / (0.3 * w) ** 2)
    light = exposure * (0.35 + 0.45 * x / w + 0.25 * hot_spot)
    reflectance = 0.15 + (0.82 - 0.15) * lines  # dark lines on greyish paper
    value = 255 * light * reflectance + np.random.default_rng(seed).normal(0, 3, (h, w))
    grey = np.clip(value, 0, 255)
    return Image.fromarray(np.stack([grey, grey * 0.96, grey * 0.88], axis=-1).astype(np.uint8))


@pytest.mark.parametrize("exposure", [1.0, 0.45])
def test_uneven_lighting_is_flattened(exposure):
    photo = photographed(exposure=exposure)
    paper = lum(photo)[lum(drawing((640, 480), box=(150, 70, 490, 410), width=4)) > 250]
    assert paper.max() - paper.min() > 45  # the input really is uneven
    assert exposure == 1.0 or np.median(lum(photo)) < 100  # dim: mostly dark, yet dark lines on paper
    out = normalize_sketch(photo)
    assert_clean(out)
    a = lum(out)
    paper = ~near(a < 250)
    assert a[paper].min() == 255  # every bit of paper is white: no gradient, no shadow
    assert paper.mean() > 0.7


def test_filled_areas_stay_filled_and_lines_keep_their_width():
    img = drawing()
    ImageDraw.Draw(img).ellipse((60, 60, 260, 260), fill=(30, 30, 30))  # more than a quarter of it is ink
    ImageDraw.Draw(img).rectangle((300, 330, 400, 400), fill="black")
    out = normalize_sketch(img)
    a = lum(out)
    assert a[:8, -8:].min() > 240 and a[-8:, :8].min() > 240  # not inverted
    assert a[40:60, 40:60].max() < 30  # inside the disc
    widths = stroke_widths(out)
    assert np.all((widths[widths < 20] >= 2) & (widths[widths < 20] <= 5)) and np.sum(widths < 20) >= 4


def test_faint_pencil_lines_become_solid():
    rng = np.random.default_rng(1)
    pencil = np.asarray(drawing(width=1, ink=(190, 190, 190), paper=(246, 246, 246))).astype(np.float32)
    pencil = np.clip(pencil + rng.normal(0, 2, pencil.shape[:2])[..., None], 0, 255).astype(np.uint8)
    out = normalize_sketch(pencil)  # a numpy array, like the editor gives
    assert_clean(out)
    assert np.all((stroke_widths(out) >= 2) & (stroke_widths(out) <= 5))


@pytest.mark.parametrize("ink", [(30, 60, 220), (220, 30, 30), (20, 150, 40), (250, 200, 0)])
def test_coloured_ink_becomes_black(ink):
    assert_clean(normalize_sketch(drawing(ink=ink)))


def test_tiny_off_centre_doodle_fills_the_frame():
    doodle = drawing(box=(20, 420, 80, 450), width=2)  # 60 x 30 in a corner of 512 x 512
    out = normalize_sketch(doodle)
    assert_clean(out)
    left, top, right, bottom = ink_box(out)
    assert (right - left) / (bottom - top) == pytest.approx(2.0, rel=0.1)  # aspect kept, not stretched


def test_huge_photo():
    big = drawing((6000, 4000), box=(1500, 500, 4500, 3500), width=12, ss=1)
    out, frame = normalize_sketch(big, return_frame=True)
    assert_clean(out)
    assert frame.side == pytest.approx(3012 / (1 - 2 * MARGIN), rel=0.02)
    assert 2 <= np.median(stroke_widths(out)) <= 5


def jpeg(img: Image.Image, quality: int = 60) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def noisy_paper(seed: int = 2) -> Image.Image:
    noise = np.random.default_rng(seed).normal(0, 4, (512, 512))
    return jpeg(Image.fromarray(np.clip(250 + noise, 0, 255).astype(np.uint8)).convert("RGB"))


@pytest.mark.parametrize(
    "blank",
    [
        Image.new("RGB", (512, 512), "white"),
        Image.new("RGBA", (512, 512), (0, 0, 0, 0)),
        Image.new("L", (300, 200), 120),
        Image.new("RGB", (512, 512), "black"),
        noisy_paper(),
        None,
        {"background": None, "layers": [], "composite": None},
    ],
    ids=["white", "transparent", "grey", "black", "jpeg-noise", "none", "empty-editor"],
)
def test_empty_canvas_is_an_error_with_a_plain_message(blank):
    with pytest.raises(SketchError, match="empty"):
        normalize_sketch(blank)
    if blank is not None and not isinstance(blank, dict):
        assert not ink_mask(blank).any()


def test_one_short_stroke_is_a_sketch():
    img = Image.new("RGB", (512, 512), "white")
    ImageDraw.Draw(img).line((200, 300, 230, 300), fill="black", width=6)
    out = normalize_sketch(img)
    assert out.size == (256, 256) and (lum(out) < 128).any()


@pytest.mark.parametrize(
    "canvas, pen",
    [(512, 1), (512, 6), (512, 16), (512, 24), (1024, 40), (256, 2), (1500, 3), (1500, 30), (3000, 12)],
)
def test_stroke_width_is_normalized(canvas, pen):
    s = canvas / 512
    box = (96 * s, 96 * s, 416 * s, 416 * s)
    img = drawing((canvas, canvas), box, width=pen, ss=1 if canvas > 1000 else SS)
    widths = stroke_widths(normalize_sketch(img))
    assert len(widths) >= 4
    assert np.all((widths >= 2) & (widths <= 5)), widths
    assert STROKE_PX - 1 <= np.median(widths) <= STROKE_PX + 2


def test_specks_are_removed_and_do_not_move_the_frame():
    clean = drawing()
    dusty = np.asarray(clean).copy()
    rng = np.random.default_rng(3)
    for y, x in rng.integers(0, 512, (300, 2)):
        dusty[y : y + rng.integers(1, 3), x : x + rng.integers(1, 3)] = 40  # dust: 1-2 px specks everywhere
    out = normalize_sketch(dusty)
    assert_clean(out)
    assert astuple(find_frame(Image.fromarray(dusty))) == pytest.approx(astuple(find_frame(clean)), abs=3)
    assert not np.any((lum(out) < 128) & ~near(lum(normalize_sketch(clean)) < 128))  # no ink away from the lines


def test_crop_false_keeps_the_whole_canvas():
    canvas = drawing((640, 480), box=(440, 30, 600, 150), width=6)  # small, top right
    out, frame = normalize_sketch(canvas, crop=False, return_frame=True)
    assert frame == Frame(0.0, -80.0, 640.0)  # padded to a square, centred
    scale = 256 / 640
    left, top, right, bottom = ink_box(out)
    assert left == pytest.approx(440 * scale, abs=3) and right == pytest.approx(600 * scale, abs=3)
    assert top == pytest.approx((30 + 80) * scale, abs=3) and bottom == pytest.approx((150 + 80) * scale, abs=3)
    a = lum(out)
    assert a[:40].min() > 240 and a[-40:].min() > 240  # the padding is paper


def test_frame_image_crops_a_photo_like_its_outline():
    w, h = 640, 480
    outline = drawing((w, h), box=(330, 150, 630, 470), width=4)  # near the bottom-right edges
    photo = Image.new("RGB", (w, h), (90, 140, 200))
    ImageDraw.Draw(outline).rectangle((500, 200, 520, 220), fill="black")
    ImageDraw.Draw(photo).rectangle((500, 200, 520, 220), fill=(255, 0, 0))
    sketch, frame = normalize_sketch(outline, return_frame=True)
    target = frame_image(photo, frame, 256)
    assert target.size == (256, 256)
    assert frame.left + frame.side > w and frame.top + frame.side > h  # part of the frame is off the photo

    rgb = np.asarray(target).astype(int)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    ry, rx = np.nonzero(red)
    scale = 256 / frame.side
    left, top = frame.left, frame.top
    assert (rx.min(), rx.max() + 1) == pytest.approx(((500 - left) * scale, (521 - left) * scale), abs=1.5)
    assert (ry.min(), ry.max() + 1) == pytest.approx(((200 - top) * scale, (221 - top) * scale), abs=1.5)
    square = lum(sketch)[ry.min() + 2 : ry.max() - 1, rx.min() + 2 : rx.max() - 1]
    assert square.max() < 60  # the outline's filled square is at the same place
    assert rgb[-3:, -3:].min() == 255  # beyond the photo's edge: white padding


def test_frame_image_fill_and_resample():
    img = Image.new("L", (10, 10), 200)
    out = frame_image(img, Frame(-10, 0, 20), 4, fill=7, resample=Image.Resampling.NEAREST)
    assert np.asarray(out).tolist()[0] == [7, 7, 200, 200]
    white = frame_image(img, Frame(5, 5, 10), 2, resample=Image.Resampling.NEAREST)  # default fill on an L image
    assert white.getpixel((1, 1)) == 255


def test_find_frame_geometry():
    img = Image.new("RGB", (400, 300), "white")
    ImageDraw.Draw(img).rectangle((100, 50, 299, 149), outline="black", width=3)  # 200 x 100 box
    frame = find_frame(img, margin=0.1)
    assert frame.side == pytest.approx(200 / 0.8, abs=1)
    assert frame.left + frame.side / 2 == pytest.approx(200, abs=1)
    assert frame.top + frame.side / 2 == pytest.approx(100, abs=1)
    assert find_frame(img, margin=0).side == pytest.approx(200, abs=1)
    with pytest.raises(ValueError):
        find_frame(img, margin=0.5)


def test_editor_values():
    strokes = drawing(ink=(0, 0, 0, 255), paper=(0, 0, 0, 0), mode="RGBA")
    as_array = np.asarray(strokes)
    from_array = editor_to_image({"background": None, "layers": [as_array], "composite": as_array})
    assert from_array.mode == "RGB" and from_array.getpixel((0, 0)) == (255, 255, 255)
    # No composite: the layers are flattened over the background in order.
    background = Image.new("RGB", (512, 512), (255, 255, 255))
    red_dot = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    ImageDraw.Draw(red_dot).ellipse((240, 240, 260, 260), fill=(255, 0, 0, 255))
    flat = editor_to_image({"background": background, "layers": [strokes, red_dot], "composite": None})
    assert flat.getpixel((250, 250)) == (255, 0, 0)
    assert np.array_equal(np.asarray(flat)[:200], np.asarray(from_array)[:200])
    assert editor_to_image(None) is None
    assert editor_to_image({"background": None, "layers": [], "composite": None}) is None
    assert_clean(normalize_sketch({"background": background, "layers": [strokes], "composite": None}))


def test_other_inputs(tmp_path):
    img = drawing()
    path = tmp_path / "sketch.png"
    img.convert("L").save(path)
    assert_clean(normalize_sketch(str(path)))
    assert_clean(normalize_sketch(np.asarray(img.convert("L")) / 255.0))  # floats in [0, 1]
    assert_clean(normalize_sketch(np.asarray(img.convert("L")) > 128))  # True is paper here
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(SketchError, match="could not be read"):
        normalize_sketch(tmp_path / "broken.png")
    with pytest.raises(TypeError):
        normalize_sketch(42)


def test_output_size_and_ink_mask():
    img = drawing()
    big = normalize_sketch(img, size=512)
    assert_clean(big, size=512)
    assert 2 * (STROKE_PX - 1) <= np.median(stroke_widths(big)) <= 2 * (STROKE_PX + 2)
    mask = ink_mask(img)
    assert mask.dtype == bool and mask.shape == (512, 512)
    assert mask[90:422, 90:422].sum() == mask.sum() > 1000


def _lines(draw) -> np.ndarray:
    img = Image.new("L", (96, 96), 0)
    draw(ImageDraw.Draw(img))
    return np.asarray(img) > 0


def test_the_drawn_object_is_what_its_outline_encloses():
    """Where colour hints count: inside a closed outline (small gaps bridged), inside the lines'
    hull where the outline is open, and everywhere on a blank canvas."""
    closed = drawn_region(_lines(lambda d: d.ellipse((10, 20, 80, 70), outline=255, width=2)))
    assert closed[45, 45] and not closed[5, 5] and not closed[45, 88] and not closed[90, 45]
    gap = _lines(lambda d: (d.arc((10, 20, 80, 70), 5, 355, fill=255, width=2)))  # a 3-4 px break at the right
    assert drawn_region(gap)[45, 45] and not drawn_region(gap)[5, 5]
    cup = _lines(lambda d: d.line([(10, 10), (10, 80), (80, 80), (80, 10)], fill=255, width=2))  # open at the top
    region = drawn_region(cup)
    assert region[45, 45] and region[12, 45] and not region[90, 45]  # the hull: the cup's opening counts
    # A figure's stick limbs close in little: its hull, so a stroke between the legs still counts.
    figure = _lines(lambda d: (d.ellipse((40, 5, 56, 21), outline=255, width=2),
                               d.line([(48, 21), (48, 60), (30, 92)], fill=255, width=2),
                               d.line([(48, 60), (66, 92)], fill=255, width=2)))
    assert drawn_region(figure)[80, 48] and not drawn_region(figure)[30, 10]
    assert drawn_region(np.zeros((32, 32), bool)).all()
