"""Start the web app: ``python app.py`` (or ``make run``), then open http://127.0.0.1:7860.

The page is served first and the model stack (torch, the default model) loads right after
in the background, so the app answers within seconds; the UI itself lives in ``demo/``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import threading
import time
from pathlib import Path

START = time.time()
REPO_ROOT = Path(__file__).resolve().parent
log = logging.getLogger("app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="pix2pix sketch studio: draw, upload and fine-tune in the browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    p.add_argument("--share", action="store_true", help="also publish a temporary public gradio.live link")
    p.add_argument("--model", help="model selected when a page opens (default: fashion if installed, else the first)")
    p.add_argument("--data-root", action="append", type=Path, metavar="DIR",
                   help="a folder whose sub-folders the Fine-tune tab may train on; repeatable "
                        f"(default: {REPO_ROOT / 'datasets'})")
    p.add_argument("--runs", type=Path, metavar="DIR", help="where fine-tuned models are saved (default: runs/)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="CPU threads per model call (default: half the cores, leaving the rest to the "
                        "web server and a fine-tune run)")
    return p.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes
    # Before torch is first imported (by the handlers): the thread count is read only then.
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.runs:
        os.environ["PIX2PIX_RUNS"] = str(args.runs.resolve())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    from demo import handlers
    from demo.settings import Settings
    from demo.ui import LAUNCH_OPTIONS, build_demo

    roots = [r.resolve() for r in args.data_root or [REPO_ROOT / "datasets"]]
    settings = Settings(default_model=args.model, data_roots=roots)
    if args.share or not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach it can use the app, including training "
                    "on the data folders %s", "a public share link" if args.share else args.host,
                    ", ".join(map(str, roots)))
    demo = build_demo(settings)
    _, local_url, share_url = demo.queue(max_size=64).launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
        max_file_size=f"{settings.max_zip_mb}mb", quiet=True, **LAUNCH_OPTIONS,
    )
    log.info("serving on %s after %.1f s", share_url or local_url, time.time() - START)
    threading.Thread(target=handlers.warm_up, args=(args.model,), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
