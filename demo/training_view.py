"""Fine-tune tab: how a run is shown, its progress line, loss plot and validation figures."""

from __future__ import annotations

import html
from pathlib import Path

from pix2pix.training.progress import ALL_LOSS_NAMES

IDLE = '<div class="run-status">No run yet.</div>'


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_html(state) -> str:
    """A progress bar with step, speed, ETA and the run's latest message."""
    if state.status == "idle":
        return IDLE
    frac = state.step / state.total if state.total else 0.0
    if state.status == "finished":
        frac = 1.0
    facts = [f"step {state.step} / {state.total}" if state.total
             else f"step {state.step} (timing the run)" if state.step else "preparing"]
    if state.status == "running" and state.images_per_s and not state.phase:
        facts.append(f"{state.images_per_s:.1f} images/s")
        if state.eta_s:
            facts.append(f"about {_duration(state.eta_s)} left")
    if state.phase and state.status in ("running", "stopping"):
        facts.append(f"{html.escape(state.phase)}…")  # between steps: no speed or ETA to show
    message = html.escape(state.message)
    if state.status in ("finished", "stopped") and state.model_dir is not None:
        message += f" The model <b>{html.escape(Path(state.run_dir).name)}</b>{_sizes(state)} is now in the model pickers."
    return (
        f'<div class="run-status {state.status}">'
        f'<div class="bar"><div style="width:{100 * frac:.1f}%"></div></div>'
        f"<div><b>{state.status.capitalize()}</b> · {' · '.join(facts)}</div>"
        f"<div>{message}</div></div>"
    )


def _sizes(state) -> str:
    """" (model 27 MB; run folder 190 MB)": what a finished or stopped run takes on disk."""
    from demo.uploads import folder_size, human_size

    model, run = Path(state.model_dir), Path(state.run_dir)
    if not model.is_dir():
        return ""
    return f" (model {human_size(folder_size(model))}; run folder {human_size(folder_size(run))})"


# The loss plot's colours, which the legend under it (loss_legend) names.
LOSS_COLOURS = {"G_GAN": "#2563eb", "G_L1": "#ea580c", "D_real": "#16a34a", "D_fake": "#dc2626", "G_FM": "#9333ea"}
LOSS_MEANINGS = {"G_GAN": "generator: fooling D", "G_L1": "generator: distance to the target",
                 "D_real": "discriminator on real pairs", "D_fake": "discriminator on generated pairs",
                 "G_FM": "feature matching (clean recipe)"}


def loss_legend() -> str:
    """HTML: a swatch, the name and a few words for each line of the loss plot."""
    items = "".join(f'<span><i style="background:{LOSS_COLOURS[k]}"></i><b>{k}</b> <small>{LOSS_MEANINGS[k]}</small>'
                    "</span>" for k in ALL_LOSS_NAMES)
    return f'<div class="loss-legend">{items}</div>'


PLOT_W, PLOT_H, PAD_L, PAD_B, PAD_T, PAD_R = 600, 240, 44, 22, 8, 8
NO_LOSSES = '<div class="loss-plot empty">Losses appear after the first steps.</div>'


def _tick(v: float) -> str:
    return f"{v:.3g}"


def loss_plot(history: list[dict], max_points: int = 500) -> str:
    """The losses per step as an inline SVG, one line per loss in its LOSS_COLOURS colour,
    drawn here rather than by a chart library (which logged version warnings in the browser).
    Long runs are thinned to about ``max_points`` steps: the plot is re-sent every second."""
    history = history[:: -(-len(history) // max_points) or 1]
    lines = {k: [(h["step"], float(h[k])) for h in history if k in h] for k in ALL_LOSS_NAMES}
    lines = {k: pts for k, pts in lines.items() if pts}
    if not lines:
        return NO_LOSSES
    xs = [x for pts in lines.values() for x, _ in pts]
    ys = [y for pts in lines.values() for _, y in pts]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.05 or 1.0
    w, h = PLOT_W - PAD_L - PAD_R, PLOT_H - PAD_T - PAD_B

    def at(x: float, y: float) -> str:
        return f"{PAD_L + (x - x0) / (x1 - x0) * w:.1f},{PAD_T + (1 - (y - y0) / (y1 - y0)) * h:.1f}"

    grid = "".join(
        f'<line x1="{PAD_L}" x2="{PLOT_W - PAD_R}" y1="{PAD_T + (1 - f) * h:.1f}" y2="{PAD_T + (1 - f) * h:.1f}" '
        f'class="grid"/><text x="{PAD_L - 4}" y="{PAD_T + (1 - f) * h + 4:.1f}" text-anchor="end">'
        f"{_tick(y0 + f * (y1 - y0))}</text>" for f in (0, 0.25, 0.5, 0.75, 1))
    steps = (f'<text x="{PAD_L}" y="{PLOT_H - 6}">step {x0}</text>'
             f'<text x="{PLOT_W - PAD_R}" y="{PLOT_H - 6}" text-anchor="end">step {max(xs)}</text>')
    paths = "".join(
        f'<path d="M{" L".join(at(x, y) for x, y in pts)}" stroke="{LOSS_COLOURS[k]}" fill="none" '
        f'stroke-width="1.5"><title>{k}</title></path>' for k, pts in lines.items())
    return (f'<svg class="loss-plot" viewBox="0 0 {PLOT_W} {PLOT_H}" role="img" aria-label="Losses per step">'
            f"{grid}{steps}{paths}</svg>")


def metrics_text(val: dict) -> str:
    if not val:
        return "Validation metrics appear after the first epoch (when there is a validation split)."
    n = int(val.get("n", 0))
    parts = [f"L1 {val['l1']:.3f}" if "l1" in val else "", f"PSNR {val['psnr']:.1f} dB" if "psnr" in val else "",
             f"SSIM {val['ssim']:.3f}" if "ssim" in val else ""]
    return f"**Validation** ({n} pairs): " + " · ".join(p for p in parts if p)
