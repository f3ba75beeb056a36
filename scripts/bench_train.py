"""Time a training command step by step, and compare checkouts of the project on it (A/B).

Each round runs ``python -m pix2pix train DATA <flags> --steps N`` once per checkout, in
alternation, each in a fresh process and a fresh run folder, and records the wall time
between consecutive steps (data loading included, as a user waits for it). The first
``--warmup`` steps are left out. Prints each round's median seconds per step, the medians
over rounds, and the ratio of every checkout to the first.

    python scripts/bench_train.py /path/to/photos --tree /tmp/old --tree . --tree-flags="--workers 1" --rounds 3 -- \\
        --outlines --photo-aspect 0.75 --ngf 32 --ndf 64 --batch-size 4 --recipe clean --hints

A checkout from before the library was grouped into packages works too. Each checkout's
outline store is whatever it keeps: the run folder's own (older checkouts) or the shared one
under ``$PIX2PIX_CACHE_DIR`` (``--cache`` sets it for every run; default: this user's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import importlib, json, sys, time
try:
    progress = importlib.import_module("pix2pix.training.progress")
except ImportError:
    progress = importlib.import_module("pix2pix.progress")
marks = []

class Timed(progress.Callback):
    def on_step(self, event):
        marks.append(time.perf_counter())

progress.TqdmCallback = Timed  # the command's progress bar, replaced by a clock
from pix2pix.cli import main
code = main(sys.argv[2:])
print("BENCH " + json.dumps({"marks": marks, "code": code}))
"""


def run_once(tree: Path, data: str, flags: list[str], steps: int, env: dict) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        cmd = [sys.executable, "-c", CHILD, "-", "train", data, "--out", str(Path(tmp) / "run"),
               "--steps", str(steps), "--no-yield", *flags]
        done = subprocess.run(cmd, cwd=tree, env=env | {"PYTHONPATH": str(tree)}, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode or not lines:
        raise SystemExit(f"{tree}: the run failed\n{done.stderr[-3000:]}")
    marks = json.loads(lines[-1][6:])["marks"]
    return [b - a for a, b in zip(marks, marks[1:])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--tree", action="append", type=Path, help="a checkout to time (repeat for an A/B); default: .")
    ap.add_argument("--tree-flags", action="append", default=[], metavar="FLAGS",
                    help="extra train flags for the checkout of the same position (repeat; '' for none), e.g. the "
                         "old command's --workers 1 against the new default")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10, help="first steps left out")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cache", type=Path, help="PIX2PIX_CACHE_DIR for every run (the outline store, measured choices)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, flags = ap.parse_args(argv[:cut]), argv[cut + 1:]  # after --: the train command's flags
    trees = [t.resolve() for t in (args.tree or [Path(".")])]
    extra = {str(t): (args.tree_flags[i].split() if i < len(args.tree_flags) else []) for i, t in enumerate(trees)}
    env = dict(os.environ)
    if args.cache:
        env["PIX2PIX_CACHE_DIR"] = str(args.cache.resolve())
    rounds: dict[str, list[float]] = {str(t): [] for t in trees}
    for r in range(args.rounds):
        for tree in trees:
            gaps = run_once(tree, args.data, flags + extra[str(tree)], args.steps, env)[args.warmup:]
            med = statistics.median(gaps)
            rounds[str(tree)].append(med)
            print(f"round {r + 1} {tree}: {1000 * med:.0f} ms/step (p90 {1000 * sorted(gaps)[int(0.9 * len(gaps))]:.0f})",
                  flush=True)
    base = statistics.median(rounds[str(trees[0])])
    summary = {}
    for tree in trees:
        med = statistics.median(rounds[str(tree)])
        summary[str(tree)] = {"ms_per_step": [round(1000 * x, 1) for x in rounds[str(tree)]],
                              "median_ms": round(1000 * med, 1), "speed_vs_first": round(base / med, 3)}
        print(f"{tree}: median {1000 * med:.0f} ms/step, {base / med:.2f}x the first")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
