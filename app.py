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

from demo.settings import Settings  # plain dataclasses: the flags' defaults come from here

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
    p.add_argument("--threads", type=int,
                   help="CPU threads per model call (default: $OMP_NUM_THREADS if set, else all the cores this "
                        "process may use; a fine-tune steps aside while someone draws)")
    p.add_argument("--upload-quota", type=float, default=Settings.upload_quota_gb, metavar="GB",
                   help="disk space for kept .zip uploads; beyond it the oldest unused make room "
                        f"(default: {Settings.upload_quota_gb:g})")
    p.add_argument("--runs-quota", type=float, default=Settings.runs_quota_gb, metavar="GB",
                   help="disk space for run folders; beyond it no new run starts "
                        f"(default: {Settings.runs_quota_gb:g})")
    p.add_argument("--no-training", action="store_true", help="leave out the Fine-tune tab: draw and generate only")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD",
                   help="require this login (repeatable); --auth-file keeps passwords out of the process list")
    p.add_argument("--auth-file", type=Path, metavar="FILE", help="logins, one USER:PASSWORD per line")
    p.add_argument("--allow-anonymous-training", action="store_true",
                   help="listen beyond this machine with training but without a login (anyone can start and "
                        "stop the shared run, upload data and delete runs)")
    return p.parse_args(argv)


def usable_cores() -> int:
    """The cores this process may run on (a container or ``taskset`` may allow fewer than the machine has).

    All of them per model call: on a 2-core box a stroke's result came 14 % sooner and
    16 API clients were answered 40 % faster than with one thread per call, leaving the
    other core to the web server (``scripts/bench_stroke.py``, ``scripts/bench_load.py``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_model_threads(args: argparse.Namespace, environ) -> None:
    """``OMP_NUM_THREADS`` from --threads; without it, a value the user set stays, else all cores."""
    if args.threads is not None and args.threads < 1:
        raise SystemExit("app.py: --threads must be 1 or more")
    if args.threads or not environ.get("OMP_NUM_THREADS"):
        environ["OMP_NUM_THREADS"] = str(args.threads or usable_cores())


def logins(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """(user, password) pairs from --auth and --auth-file; raises SystemExit on a malformed one."""
    lines = list(args.auth)
    if args.auth_file:
        try:
            lines += [line.strip() for line in args.auth_file.read_text().splitlines() if line.strip()]
        except OSError as e:
            raise SystemExit(f"app.py: cannot read --auth-file {args.auth_file}: {e.strerror}") from None
    pairs = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise SystemExit("app.py: a login must look like USER:PASSWORD (both non-empty)")
        pairs.append((user, password))
    return tuple(pairs)


def check_exposure(args: argparse.Namespace, auth: tuple) -> None:
    """Refuse to offer the one shared training run to the whole network without a login."""
    public = args.share or not is_loopback(args.host)
    if public and not args.no_training and not auth and not args.allow_anonymous_training:
        where = "a public share link" if args.share else args.host
        raise SystemExit(
            f"app.py: refusing to listen on {where} with training enabled and no login: anyone who can reach it "
            "could start or stop the shared run, upload data and delete runs. Add --auth USER:PASSWORD (or "
            "--auth-file FILE), or --no-training, or --allow-anonymous-training if that is what you want."
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from pix2pix.inference.memory import one_heap

    one_heap()  # before any thread starts: a request thread's model call then faults in no fresh memory
    logging.basicConfig(level=logging.INFO, format="%(asctime)s.%(msecs)03d %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up probes
    set_model_threads(args, os.environ)  # before torch is first imported (by the handlers): it reads them only then
    if args.runs:
        os.environ["PIX2PIX_RUNS"] = str(args.runs.resolve())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from demo.quick_import import skip_stub_writing

    skip_stub_writing()  # before gradio's first import: halves it (see the module)
    from demo import handlers
    from demo.ui import QUEUE_OPTIONS, build_demo, launch_options

    auth = logins(args)
    check_exposure(args, auth)
    roots = [r.resolve() for r in args.data_root or [REPO_ROOT / "datasets"]]
    settings = Settings(default_model=args.model, data_roots=roots, upload_quota_gb=args.upload_quota,
                        runs_quota_gb=args.runs_quota, training=not args.no_training, auth=auth)
    if args.share or not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach it %scan use the app%s",
                    "a public share link" if args.share else args.host, "and log in " if auth else "",
                    f", including training on the data folders {', '.join(map(str, roots))}"
                    if settings.training else "")
    demo = build_demo(settings)
    _, local_url, share_url = demo.queue(**QUEUE_OPTIONS).launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
        quiet=True, **launch_options(settings),
    )
    from demo import rest

    rest.mount(demo.app, settings)  # the generate API as one plain HTTP request, beside the queue
    from pix2pix.training import priority

    priority.share()  # a fine-tune started from the command line pauses while this app answers someone
    log.info("serving on %s after %.1f s", share_url or local_url, time.time() - START)
    threading.Thread(target=handlers.warm_up, args=(args.model,), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
