"""Load test of the app's ``/generate`` API: many gradio_client users at once (or, with
``--route http``, many plain HTTP clients of ``POST /api/v1/generate``).

Starts ``python app.py`` on a free loopback port (its log in a temporary folder), waits for
the model, draws ``--sketches`` distinct sketches and asks for each once, one request at a
time: those answers are the references. Then, for each client count N in ``--clients``,
N threads (one ``gradio_client.Client`` each) send ``--requests`` requests each, request j
of thread i using sketch (i * requests + j) mod sketches, and every answer is compared with
its reference (largest per-pixel difference at most ``--tolerance``, 0: identical).
Prints one JSON object: per N, requests/s, p50/p95/max latency in seconds, errors and
wrong answers; with ``--profile`` also gradio's per-phase server times (ms per request).

``--train cli`` runs a fine-tune (``python -m pix2pix train``, from the shipped fashion
model) on generated pairs for the whole measurement, as a busy classroom machine would;
``--train app`` starts one from the app's Fine-tune tab instead (through its page events,
as the browser does). ``--bombs N`` afterwards sends N decompression-bomb PNGs and reports
the app's peak and current memory (VmHWM/VmRSS) before and after. ``--root`` starts
another checkout's app.py (an older commit, to compare). Loopback only; every loop is
bounded by ``--requests`` and the whole run by ``--timeout``.

    python scripts/bench_load.py --clients 1 4 16 --requests 10
    python scripts/bench_load.py --clients 1 4 16 --requests 10 --route http
    python scripts/bench_load.py --clients 16 --requests 10 --train cli
    python scripts/bench_load.py --clients 1 --requests 1 --bombs 16
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="client counts to run, in turn")
    p.add_argument("--requests", type=int, default=10, help="requests per client (default 10)")
    p.add_argument("--sketches", type=int, default=32, help="distinct sketches (default 32)")
    p.add_argument("--model", default="", help="model name ('' = the app's default)")
    p.add_argument("--tolerance", type=int, default=0, help="largest per-pixel difference from the reference")
    p.add_argument("--timeout", type=float, default=900, help="give up after this many seconds in all")
    p.add_argument("--profile", action="store_true", help="report gradio's per-phase server times")
    p.add_argument("--train", choices=["none", "cli", "app"], default="none",
                   help="a fine-tune running meanwhile: none, the CLI's, or one started in the app")
    p.add_argument("--bombs", type=int, default=0, help="then send this many PNG bombs and report memory")
    p.add_argument("--route", choices=["gradio", "http"], default="gradio",
                   help="gradio: gradio_client through the queue; http: POST /api/v1/generate (keep-alive)")
    p.add_argument("--app-arg", action="append", default=[], help="an extra argument for app.py (repeatable)")
    p.add_argument("--threads", type=int, help="app.py --threads")
    p.add_argument("--pause", type=float, default=0, metavar="S",
                   help="seconds each client waits before each request, as a person between strokes (default 0: "
                        "back to back); the latencies then show what an idle machine's wake-up costs")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app.py to start (default: this one), "
                   "e.g. an older commit's to compare")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- inputs


def random_sketch(seed: int, size: int = 512) -> Image.Image:
    """A few random strokes and shapes on white: each seed a different drawing."""
    r = random.Random(seed)
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    u, width = size / 512, max(2, round(6 * size / 512))
    for _ in range(r.randint(3, 7)):
        x0, y0 = r.randint(40, 256) * u, r.randint(40, 256) * u
        x1, y1 = x0 + r.randint(60, 216) * u, y0 + r.randint(60, 216) * u
        shape = r.choice(("line", "rect", "ellipse"))
        if shape == "line":
            d.line([(x0, y0), (x1, y1), (r.randint(40, 472) * u, r.randint(40, 472) * u)], fill="black", width=width)
        elif shape == "rect":
            d.rectangle((x0, y0, x1, y1), outline="black", width=width)
        else:
            d.ellipse((x0, y0, x1, y1), outline="black", width=width)
    return img


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A valid PNG of ``width`` x ``height`` white RGB pixels, compressed about 1000:1."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    row = b"\0" + b"\xff" * (3 * width)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------------------- the app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port),
           "--data-root", str(log.parent / "data"), "--runs", str(log.parent / "runs"), *args.app_arg]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    if args.profile:
        env["GRADIO_PROFILING"] = "1"
    proc = subprocess.Popen(cmd, cwd=args.root, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while "ready (" not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"app.py did not get ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}/"


def memory_kb(pid: int) -> dict[str, int]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields


def cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (default: this one, all its threads)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(url: str, clear: bool = False) -> dict | None:
    base = url + "gradio_api/profiling/"
    if clear:
        urllib.request.urlopen(urllib.request.Request(base + "clear", method="POST"), timeout=10).close()
        return None
    with urllib.request.urlopen(base + "summary", timeout=10) as r:
        summary = json.load(r)
    phases = {k: {"p50": round(v["p50"], 1), "mean": round(v["mean"], 1)} for k, v in summary["phases"].items()
              if v["max"] > 0}
    upload = summary.get("upload") or {}
    if upload:
        phases["upload"] = {"p50": round(upload["p50"], 1), "mean": round(upload["mean"], 1)}
    return phases


# ---------------------------------------------------------------------------- load


def ask(client, path: Path, model: str) -> np.ndarray:
    from gradio_client import handle_file

    out = client.predict(handle_file(str(path)), model, -1, api_name="/generate")
    with Image.open(out) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


class HttpClient:
    """One user of ``POST /api/v1/generate``, on one keep-alive connection."""

    def __init__(self, url: str):
        import httpx

        self.url, self.session = url.rstrip("/") + "/api/v1/generate", httpx.Client(timeout=120)

    def ask(self, path: Path, model: str) -> np.ndarray:
        r = self.session.post(self.url, data={"model": model, "seed": "-1"},
                              files={"sketch": (path.name, path.read_bytes(), "image/png")})
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:150]}")
        with Image.open(io.BytesIO(r.content)) as img:
            return np.asarray(img.convert("RGB"), dtype=np.int16)


def make_client(url: str, route: str):
    if route == "http":
        return HttpClient(url)
    from gradio_client import Client

    return Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="bench-load-"))


def one_round(url: str, files: list[Path], refs: list[np.ndarray], args, clients: int, deadline: float) -> dict:
    latencies, errors, wrong, lock = [], [], [], threading.Lock()
    worst = [0]

    def worker(i: int) -> None:
        try:
            client = make_client(url, args.route)
        except Exception as e:  # noqa: BLE001 - counted and reported
            with lock:
                errors.append(f"connect: {e}")
            return
        for j in range(args.requests):
            if time.time() > deadline:
                break
            k = (i * args.requests + j) % len(files)
            time.sleep(args.pause)
            start = time.perf_counter()
            try:
                got = client.ask(files[k], args.model) if args.route == "http" else ask(client, files[k], args.model)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(str(e)[:200])
                continue
            took = time.perf_counter() - start
            diff = int(np.abs(got - refs[k]).max()) if got.shape == refs[k].shape else 255
            with lock:
                latencies.append(took)
                worst[0] = max(worst[0], diff)
                if diff > args.tolerance:
                    wrong.append(k)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    start, cpu_app, cpu_bench = time.perf_counter(), cpu_s(args.app_pid), cpu_s()
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.time()))
    wall = time.perf_counter() - start
    cpu_app, cpu_bench = cpu_s(args.app_pid) - cpu_app, cpu_s() - cpu_bench
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=20, method="inclusive") if len(lat) >= 2 else lat * 19
    return {
        "clients": clients, "requests": len(lat) + len(errors), "errors": len(errors), "wrong": len(wrong),
        "max_pixel_diff": worst[0], "wall_s": round(wall, 2), "req_per_s": round(len(lat) / wall, 2),
        "p50_s": round(statistics.median(lat), 3) if lat else None, "p95_s": round(q[18], 3) if lat else None,
        "max_s": round(lat[-1], 3) if lat else None, "first_errors": errors[:3],
        # where the CPU went, per answered request: the app, and these clients
        "app_cpu_ms": round(1000 * cpu_app / max(1, len(lat)), 1),
        "client_cpu_ms": round(1000 * cpu_bench / max(1, len(lat)), 1),
    }


def bombs(url: str, pid: int, count: int, folder: Path) -> dict:
    """Send PNG bombs of 16 to 400 megapixels; memory before and after, and what came back."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(folder))
    before = memory_kb(pid)
    answers = []
    for i in range(count):
        side = 4000 + i * 1000  # 16 MP up to (4000 + 1000 (count - 1))^2
        path = png_bomb(folder / f"bomb{i}.png", side, side)
        try:
            client.predict(handle_file(str(path)), "", -1, api_name="/generate")
            answers.append(f"{side}x{side}: answered")
        except Exception as e:  # noqa: BLE001 - the refusal is the expected answer
            answers.append(f"{side}x{side} ({path.stat().st_size // 1024} KB): {str(e)[:120]}")
        path.unlink()
    after = memory_kb(pid)
    return {"before_kb": before, "after_kb": after, "peak_rise_mb": round((after["VmHWM"] - before["VmRSS"]) / 1024),
            "answers": answers}


def make_pairs(folder: Path, n: int = 48) -> Path:
    """Side-by-side 256 px pairs (a sketch | its shapes filled) to train on."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        a = random_sketch(1000 + k, 256)
        b = a.copy()
        ImageDraw.floodfill(b, (0, 0), (120, 150, 200))
        pair = Image.new("RGB", (512, 256))
        pair.paste(a, (0, 0))
        pair.paste(b, (256, 0))
        pair.save(folder / f"{k:03d}.png")
    return folder


def cli_training(data: Path, folder: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pix2pix", "train", str(data), "--init", "fashion", "--out", str(folder / "cli-run"),
           "--epochs", "1000"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=(folder / "train.log").open("w"), stderr=subprocess.STDOUT)


def cli_paused(folder: Path) -> bool:
    """Did the CLI run that :func:`cli_training` started in ``folder`` pause for the app?"""
    return "pausing between steps" in (folder / "train.log").read_text()


def page_event(url: str, session: str, button: str, data: list) -> dict:
    """Run the event of the page's button ``button`` (an elem_id) as a browser would: join
    the queue, then read the event stream to its end. Returns the completion message."""
    with urllib.request.urlopen(url + "config", timeout=10) as r:
        config = json.load(r)
    target = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == button)
    fn = next(d["id"] for d in config["dependencies"] if [target, "click"] in [list(t) for t in d["targets"]])
    body = json.dumps({"data": data, "fn_index": fn, "session_hash": session, "event_data": None,
                       "trigger_id": target}).encode()
    join = urllib.request.Request(url + "gradio_api/queue/join", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(join, timeout=10).close()
    with urllib.request.urlopen(url + f"gradio_api/queue/data?session_hash={session}", timeout=60) as stream:
        for line in stream:
            if line.startswith(b"data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise RuntimeError(f"the {button} event never completed")


def app_training(url: str) -> None:
    """Check the generated pairs and start a run from scratch in the app's Fine-tune tab."""
    session = os.urandom(8).hex()
    for button, data in (("check-data", ["pairs", False, ""]),
                         ("start", [None, False, "(from scratch)", "epochs", 1000, 2e-4, 1, "AtoB", 0.1, "bench",
                                    32, 64, "auto"])):
        done = page_event(url, session, button, data)
        if not done.get("success"):
            raise RuntimeError(f"{button} failed: {done}")


def start_training(kind: str, url: str, tmp: Path) -> subprocess.Popen | None:
    """Start the fine-tune to measure beside (``kind``: none, cli or app; the CLI's process is
    returned) on pairs made in ``tmp/data/pairs``, and wait until it is past its start-up,
    into its training steps."""
    if kind == "none":
        return None
    data = make_pairs(tmp / "data" / "pairs")
    trainer = cli_training(data, tmp) if kind == "cli" else app_training(url)
    time.sleep(20)
    return trainer


def main(argv=None) -> None:
    args = parse_args(argv)
    deadline = time.time() + args.timeout
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp = Path(tmp)
        proc, url = start_app(args, tmp / "app.log")
        args.app_pid = proc.pid
        trainer = None
        try:
            files = []
            for k in range(args.sketches):
                files.append(tmp / f"sketch{k:03d}.png")
                random_sketch(k).save(files[-1])
            client = Client(url, verbose=False, download_files=str(tmp))
            refs = [ask(client, f, args.model) for f in files]  # through gradio: both routes must match it
            trainer = start_training(args.train, url, tmp)
            rounds = []
            for n in args.clients:
                if args.profile:
                    profile(url, clear=True)
                rounds.append(one_round(url, files, refs, args, n, deadline))
                if args.profile:
                    rounds[-1]["server_ms"] = profile(url)
            report = {"root": str(args.root), "route": args.route, "model": args.model or "(default)",
                      "requests_per_client": args.requests, "pause_s": args.pause,
                      "training": args.train, "rounds": rounds}
            if args.train != "none":  # still going at the end? (else the figures are not under training)
                run = tmp / ("cli-run" if args.train == "cli" else "runs/bench")
                report["training_started"] = (run / "run.json").is_file()
                report["training_alive"] = trainer.poll() is None if trainer else "failed" not in (
                    tmp / "app.log").read_text()
                if trainer:
                    report["cli_paused_for_the_app"] = cli_paused(tmp)
            if args.bombs:
                report["bombs"] = bombs(url, proc.pid, args.bombs, tmp)
            print(json.dumps(report, indent=1))
        finally:
            for p in (trainer, proc):
                if p is not None and p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()


if __name__ == "__main__":
    main()
