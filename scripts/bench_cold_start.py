"""How soon ``python app.py`` serves its page and has its default model ready.

Launches the app ``--runs`` times and reads, from the moment the process is started, when
its log says "serving on" (the page answers) and "model ... ready" (the first stroke is
answered by a warmed-up model). Prints one JSON object: per app, the median and every run in
seconds. With several ``--app`` files (say, a worktree of an older commit) the launches
alternate between them, so a busy stretch of a shared machine falls on all of them alike,
and each median is also given as a ratio to the first app's.

    python scripts/bench_cold_start.py --runs 6
    python scripts/bench_cold_start.py --runs 6 --app app.py --app /tmp/before/app.py
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
MARKS = {"page": "serving on", "model": " ready "}


def launch(app: Path, port: int, tmp: Path, limit_s: float = 120) -> dict[str, float]:
    """Seconds from starting ``app`` to each of MARKS in its log (the log is polled every 10 ms)."""
    log = tmp / "app.log"
    cmd = [sys.executable, str(app), "--port", str(port), "--runs", str(tmp / "runs"), "--data-root", str(tmp / "data")]
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    seen: dict[str, float] = {}
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=app.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while len(seen) < len(MARKS):
                text = log.read_text()
                now = time.perf_counter() - start
                seen.update({k: now for k, mark in MARKS.items() if k not in seen and mark in text})
                if proc.poll() is not None or now > limit_s or "failed" in text:
                    raise RuntimeError(f"{app} did not get ready:\n{text[-2000:]}")
                time.sleep(0.01)
        finally:
            proc.terminate()
            proc.wait(30)
    return {k: round(v, 2) for k, v in seen.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=6, help="launches per app (default: 6)")
    ap.add_argument("--app", action="append", type=Path, help="an app.py to launch (repeatable; default: this one)")
    ap.add_argument("--port", type=int, default=7897)
    args = ap.parse_args()
    apps = [a.resolve() for a in args.app or [ROOT / "app.py"]]
    times: dict[Path, list[dict]] = {a: [] for a in apps}
    try:
        for _ in range(args.runs):
            for app in apps:
                with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
                    times[app].append(launch(app, args.port, Path(tmp)))
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    report = {}
    for app, rows in times.items():
        report[str(app)] = {k: {"median_s": round(statistics.median(r[k] for r in rows), 2), "runs_s": [r[k] for r in rows]}
                            for k in MARKS}
    base = report[str(apps[0])]
    for entry in report.values():
        for k in MARKS:
            entry[k]["ratio_to_first"] = round(entry[k]["median_s"] / base[k]["median_s"], 2)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
