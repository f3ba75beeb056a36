"""The drawing on a page, and what a person would not count as part of it.

A designer's page holds more than the drawing: handwritten or printed notes, a ruled border,
a colour swatch with its label, stray specks. Framed with the drawing, they push it into a
corner of the frame. This finds them by the layout of the ink (its connected components):

- a *border*: a component that frames most of the page and is hollow, or a long straight line
  along one of its edges (a ruler);
- the *drawing*: the ink is gathered into clusters (components closer than 3 % of the page
  join one), and the cluster with the most ink is the drawing, with every cluster that reaches
  into its box (hatching, buttons, a second leg), and every other cluster that is not one of:
- a *text block*: three or more small components of similar height, wider than tall as a whole;
- a *swatch*: a solid patch (most of its box inked), with whatever label sits by it;
- a *speck*: a cluster with a hundredth of the drawing's ink or less, a few pixels across.

Several figures on one page stay: each is a cluster too large to be any of these. A drawing
with none of them is returned untouched, so it is framed exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

GAP = 0.03  # components closer than this fraction of the page's long side are one cluster
BORDER_SPAN, BORDER_FILL, BORDER_EDGE, BORDER_BAND = 0.7, 0.2, 0.1, 0.02
RULER_SPAN, RULER_THICK = 0.5, 0.03
TEXT_HEIGHT, TEXT_SPREAD, TEXT_MIN = 0.06, 3.0, 3  # median letter height, max / median, letters a block
TEXT_SHARE = 0.5  # a text block has less ink than this share of the drawing's
SWATCH_FILL, SWATCH_SIDE = 0.6, 0.02
SPECK_SHARE, SPECK_SIDE = 0.01, 0.04
KINDS = ("text block", "border", "swatch", "speck")


@dataclass
class Page:
    """What :func:`find_drawing` kept (a mask the image's size) and what it left out, by kind."""

    drawing: np.ndarray
    left_out: dict[str, int] = field(default_factory=dict)

    def sentence(self) -> str:
        """"left out 3 text blocks and a border" ("" when nothing was)."""
        parts = [f"{'a' if n == 1 else n} {kind if n == 1 else kind + 's'}" for kind in KINDS
                 if (n := self.left_out.get(kind, 0))]
        if not parts:
            return ""
        return "left out " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def _borders(stats: np.ndarray, labels: np.ndarray, h: int, w: int) -> np.ndarray:
    """Per component: a frame around most of the page, or a ruler line along one of its edges."""
    side = max(h, w)
    x, y, bw, bh, area = stats.T
    frame = (bw >= BORDER_SPAN * w) & (bh >= BORDER_SPAN * h) & (area <= BORDER_FILL * bw * bh)
    near = lambda lo, extent, size: (lo <= BORDER_EDGE * size) | (lo + extent >= (1 - BORDER_EDGE) * size)  # noqa: E731
    ruler = (((bw >= RULER_SPAN * w) & (bh <= RULER_THICK * side) & near(y, bh, h))
             | ((bh >= RULER_SPAN * h) & (bw <= RULER_THICK * side) & near(x, bw, w)))
    found = frame | ruler
    found[0] = False
    band = max(2, round(BORDER_BAND * side))
    for i in np.flatnonzero(frame):  # a frame runs along its own box: a drawn outline that big does not
        ys, xs = np.nonzero(labels[y[i]: y[i] + bh[i], x[i]: x[i] + bw[i]] == i)
        along = (ys < band) | (ys >= bh[i] - band) | (xs < band) | (xs >= bw[i] - band)
        found[i] = along.mean() >= 0.9
    return found


def _kind(comps: np.ndarray, stats: np.ndarray, ink: int, main_ink: int, side: int) -> str | None:
    """What a cluster apart from the drawing is, by its components; None: part of the drawing."""
    x, y, bw, bh, area = stats[comps].T
    box_w = (x + bw).max() - x.min()
    box_h = (y + bh).max() - y.min()
    if ink <= SPECK_SHARE * main_ink and np.maximum(bw, bh).max() <= SPECK_SIDE * side / 4:
        return "speck"  # dots, one or a few close together
    if ((area / np.maximum(bw * bh, 1) >= SWATCH_FILL) & (np.minimum(bw, bh) >= SWATCH_SIDE * side)).any():
        return "swatch"
    median = float(np.median(bh))
    if (len(comps) >= TEXT_MIN and median <= TEXT_HEIGHT * side and bh.max() <= TEXT_SPREAD * median
            and box_w >= box_h and ink < TEXT_SHARE * main_ink):
        return "text block"
    return None


LAYOUT_PX = 512  # the layout is read on a copy of the mask at most this size (any ink in a cell counts)


def find_drawing(mask: np.ndarray) -> Page:
    """The drawing in an ink mask (bool, H x W) and what else is on the page (see the module).
    The layout is read on a copy of at most 512 px (a page of 1024 in a quarter of the time); what is
    left out is cut from the mask at full size."""
    h, w = mask.shape
    f = max(1, -(-max(h, w) // LAYOUT_PX))
    if f == 1:
        return _layout(mask)
    padded = np.zeros((-(-h // f) * f, -(-w // f) * f), bool)
    padded[:h, :w] = mask
    small = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f).any(axis=(1, 3))
    page = _layout(small)
    if not page.left_out:
        return Page(mask)
    gone = np.repeat(np.repeat(small & ~page.drawing, f, axis=0), f, axis=1)[:h, :w]
    return Page(mask & ~gone, page.left_out)


def _layout(mask: np.ndarray) -> Page:
    h, w = mask.shape
    side = max(h, w)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:  # one component (or none): nothing to tell apart
        return Page(mask)
    border = _borders(stats, labels, h, w)
    rest = mask & ~border[labels] if border.any() else mask
    gap = max(1, round(GAP * side))
    joined = cv2.dilate(rest.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (2 * gap + 1,) * 2))
    m, clusters, cstats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    if m <= 2 and not border.any():  # one drawing, nothing else: the usual case, decided here
        return Page(mask)
    # The drawing spans the most of the page: a solid swatch may hold more ink than thin lines.
    main = int(np.argmax(cstats[:, 2].astype(np.int64) * cstats[:, 3] * (np.arange(m) > 0)))
    ink = np.bincount(clusters[rest], minlength=m)
    of_comp = np.zeros(n, np.int64)  # each component's cluster
    of_comp[labels[rest]] = clusters[rest]
    mine = np.flatnonzero(of_comp == main)
    mine = mine[(mine > 0) & ~border[mine]]
    mx, my, mw, mh = stats[mine, 0], stats[mine, 1], stats[mine, 2], stats[mine, 3]
    box = (mx.min(), my.min(), (mx + mw).max() - 1, (my + mh).max() - 1)
    counts: dict[str, int] = {"border": int(border.sum() > 0)}
    dropped = border.copy()
    for c in range(1, m):
        comps = np.flatnonzero((of_comp == c) & ~border)
        comps = comps[comps > 0]
        if c == main or not len(comps):
            continue
        x, y, bw, bh, _ = stats[comps].T
        if (x.min() <= box[2]) and ((x + bw).max() - 1 >= box[0]) and (y.min() <= box[3]) and ((y + bh).max() - 1 >= box[1]):
            continue  # reaches into the drawing's box: part of it
        kind = _kind(comps, stats, int(ink[c]), int(ink[main]), side)
        if kind:
            counts[kind] = counts.get(kind, 0) + (len(comps) if kind == "speck" else 1)
            dropped[comps] = True
    if not dropped.any():
        return Page(mask)
    return Page(mask & ~dropped[labels], {k: v for k, v in counts.items() if v})
