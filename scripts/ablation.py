"""The equal-time ablation of the training recipe's options (README, "The recipe, chosen at equal time").

Every arm fine-tunes the same generator (``--init``) with a fresh discriminator on the same data,
seed and batches, one CPU thread each, two arms at a time, for the same compute: each arm's
number of steps is its budget in minutes over its own step time, measured alone on one thread
(``calibrate``), so an option that makes a step dearer gets fewer of them, and other work on the
machine only delays an arm, never changes what it did. Then every arm is scored on every
source's validation pairs, without hints, with 8 dabs and with 3 broad strokes across the
object, and the table is printed as Markdown.

    python scripts/ablation.py calibrate datasets/fashion-v3 --out runs/ablation
    python scripts/ablation.py run datasets/fashion-v3 --out runs/ablation --minutes 45 --init fashion
    python scripts/ablation.py score datasets/fashion-v3 --out runs/ablation > runs/ablation/table.md
    python scripts/draw_grid.py --runs runs/ablation --model ARM --out runs/ablation/grids/ARM.png  # each arm
    python scripts/ablation.py sheet datasets/fashion-v3 --out runs/ablation --also runs/ablation/grids/shipped.png
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

ROOT = Path(__file__).resolve().parent.parent
COMMON = ["--batch-size", "4", "--recipe", "clean", "--hints", "--seed", "0", "--workers", "0", "--lr", "1e-4",
          "--save-every", "1000", "--sample-every", "1000", "--val-max", "60", "--no-yield", "--compile", "off"]
ARMS = {
    "baseline": [],
    "diffaugment": ["--diffaugment", "color,translation,cutout"],
    "hinge": ["--gan-loss", "hinge"],
    "spectral-norm": ["--spectral-norm"],
    "two-scales": ["--d-scales", "2"],
    "r1": ["--r1", "2", "--r1-every", "16"],
    "v2": ["--diffaugment", "color,translation,cutout", "--spectral-norm"],  # the two winners together
    "classes": ["--classes", "shoe,bag,flat,figure"],  # told what each pair shows (scored told, and untold)
}
UNTOLD = " untold"  # a class arm scored again without being told: the app's Auto
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _env() -> dict:
    return dict(os.environ) | ONE_THREAD | {"PYTHONPATH": str(ROOT)}


def calibrate(args) -> int:
    """Each arm's seconds a step, alone on one thread, after warm-up (written to steps.json)."""
    bench = ROOT / "scripts" / "bench_train.py"
    times = {}
    for arm, flags in ARMS.items():
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            subprocess.run([sys.executable, str(bench), str(args.data), "--rounds", "1", "--steps", str(args.steps),
                            "--warmup", "6", "--json", f.name, "--", *COMMON, *flags, "--init", args.init],
                           check=True, env=_env(), cwd=ROOT)
            times[arm] = next(iter(json.loads(Path(f.name).read_text()).values()))["median_ms"] / 1000
        print(f"{arm}: {1000 * times[arm]:.0f} ms a step", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "step_seconds.json").write_text(json.dumps(times, indent=1) + "\n")
    return 0


NOISE = 0.08  # single calibration runs of equal work differed by this much on the shared 2-core machine
MORE_WORK = {"r1", "two-scales"}  # the baseline's step and more: never given more steps than it


def _step_seconds(seconds: dict, arm: str) -> float:
    """An arm's step time; within NOISE of the baseline's, the baseline's: equal work gets equal steps."""
    own, base = seconds.get(arm, seconds["baseline"]), seconds["baseline"]  # not calibrated: the baseline's
    return max(own, base) if arm in MORE_WORK else own if abs(own / base - 1) > NOISE else base


def run(args) -> int:
    """The arms, two at a time, each for its share of ``minutes``."""
    seconds = json.loads((args.out / "step_seconds.json").read_text())
    queue = [a for a in (args.arms or ARMS) if not (args.out / a / "model" / "config.json").exists()]
    running: list[tuple[str, subprocess.Popen]] = []
    while queue or running:
        while queue and len(running) < args.parallel:
            arm = queue.pop(0)
            steps = int(args.minutes * 60 / _step_seconds(seconds, arm))
            cmd = [sys.executable, "-m", "pix2pix", "train", str(args.data), "--out", str(args.out / arm),
                   "--steps", str(steps), "--init", args.init, *COMMON, *ARMS[arm]]
            log = open(args.out / f"{arm}.log", "w")
            print(f"{time.strftime('%H:%M')} {arm}: {steps} steps", flush=True)
            running.append((arm, subprocess.Popen(cmd, env=_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(10)
        for arm, proc in list(running):
            if proc.poll() is not None:
                print(f"{time.strftime('%H:%M')} {arm}: ended ({proc.returncode})", flush=True)
                running.remove((arm, proc))
    return 0


def _evaluate(model: Path, data: Path, source: str, extra: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "pix2pix", "-q", "evaluate", str(data), "--model", str(model),
                          "--source", source, "--precision", "fp32", *extra],
                         check=True, env=_env(), cwd=ROOT, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def score(args) -> int:
    """Every arm on every source: plain, with 8 dabs, with 3 broad strokes; a Markdown table."""
    sys.path.insert(0, str(ROOT))
    from pix2pix.images.imaging import atomic_write_bytes
    from pix2pix.training.mix import read_mix

    sources = [s.name for s in read_mix(args.data)]
    cache = args.out / "scores.json"
    scores = json.loads(cache.read_text()) if cache.exists() else {}
    arms = [a for a in (args.arms or ARMS) if (args.out / a / "model" / "config.json").exists()]  # the runs done
    arms += [a + UNTOLD for a in arms if "--classes" in ARMS[a]]
    for arm in [*arms, *args.also]:
        model = args.out / arm.removesuffix(UNTOLD) if arm.removesuffix(UNTOLD) in ARMS else Path(arm)
        untold = ["--untold"] if arm.endswith(UNTOLD) else []
        for src in sources:
            for how, extra in (("plain", []), ("dabs", ["--hints", "8"]), ("strokes", ["--hints", "3", "--hint-style",
                                                                                           "strokes"])):
                key = f"{arm}|{src}|{how}"
                if key not in scores:
                    found = _evaluate(model, args.data, src, extra + untold)
                    # Scorers of other arms may share the file: add to what is there now.
                    scores = {**(json.loads(cache.read_text()) if cache.exists() else {}), **scores, key: found}
                    atomic_write_bytes(cache, (json.dumps(scores, indent=1) + "\n").encode())
    print("| arm | " + " | ".join(sources) + " | mean L1 | 8 dabs | 3 strokes | shape IoU | speckle |")
    print("|---" * (len(sources) + 6) + "|")
    for arm in [*arms, *args.also]:
        plain = [scores[f"{arm}|{s}|plain"] for s in sources]
        dabs = [scores[f"{arm}|{s}|dabs"]["l1"] for s in sources]
        strokes = [scores[f"{arm}|{s}|strokes"]["l1"] for s in sources]
        name = arm if arm.removesuffix(UNTOLD) in ARMS else Path(arm).name
        print(f"| {name} | " + " | ".join(f"{p['l1']:.4f}" for p in plain)
              + f" | **{statistics.mean(p['l1'] for p in plain):.4f}** | {statistics.mean(dabs):.4f}"
              f" | {statistics.mean(strokes):.4f} | {statistics.mean(p['shape_iou'] for p in plain):.3f}"
              f" | {statistics.mean(p['speckle'] for p in plain):.2f} |")
    return 0


def sheet(args) -> int:
    """One picture of the arms' drawings grids (``scripts/draw_grid.py``, one per arm in
    OUT/grids/ARM.png; ``--also`` more grids by path): a row per drawing, the drawing as the
    app shows it, then each arm's result, named at the top."""
    from PIL import Image, ImageDraw

    grids = {a: args.out / "grids" / f"{a}.png" for a in (args.arms or ARMS)}
    grids = {**{Path(g).stem: Path(g) for g in args.also}, **{a: g for a, g in grids.items() if g.exists()}}
    cell, full, head, label = 128, 256, 24, 18  # draw_grid: pairs of 256 px cells under an 18 px caption
    first = Image.open(next(iter(grids.values())))
    cols, rows = first.width // (2 * full), first.height // (full + label)
    out = Image.new("RGB", ((1 + len(grids)) * cell, head + cols * rows * cell), "white")
    ink = ImageDraw.Draw(out)
    for i, name in enumerate(["drawing", *grids]):
        ink.text((i * cell + 4, 6), name, fill="black")
    for j, (name, path) in enumerate(grids.items()):
        grid = Image.open(path).convert("RGB")
        for k in range(cols * rows):
            r, c = divmod(k, cols)
            y = r * (full + label) + label
            if j == 0:
                out.paste(grid.crop((2 * c * full, y, 2 * c * full + full, y + full)).resize((cell, cell)),
                          (0, head + k * cell))
            out.paste(grid.crop(((2 * c + 1) * full, y, (2 * c + 2) * full, y + full)).resize((cell, cell)),
                      ((1 + j) * cell, head + k * cell))
    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.sheet, quality=85)
    print(f"wrote {args.sheet}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(required=True)
    for name, fn in (("calibrate", calibrate), ("run", run), ("score", score), ("sheet", sheet)):
        p = sub.add_parser(name)
        p.add_argument("data", type=Path)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--init", default="fashion")
        p.add_argument("--steps", type=int, default=30, help="calibrate: steps timed per arm")
        p.add_argument("--minutes", type=float, default=45.0)
        p.add_argument("--parallel", type=int, default=2)
        p.add_argument("--also", nargs="*", default=[], help="score: more model folders beside the arms; "
                       "sheet: more drawings grids")
        p.add_argument("--sheet", type=Path, default=Path("docs/ablation/equal_time_drawings.jpg"))
        p.add_argument("--arms", nargs="*", default=[], help="run, score: only these arms")
        p.set_defaults(func=fn)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
