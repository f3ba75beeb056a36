"""Command line: ``python -m pix2pix {train,generate,evaluate,bench,outlines,models}``.

Flags map one-to-one onto the dataclasses in :mod:`pix2pix.config`; ``--model``/``--init``
accept a shipped model's name, a model or run folder, or a weights file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .config import DIRECTIONS, PRECISIONS, UPSAMPLES

log = logging.getLogger("pix2pix")


def add_config_flags(parser: argparse.ArgumentParser, cls, names: list[str] | None = None) -> None:
    """One flag per field of the config dataclass ``cls`` (all of them, or ``names``), with
    the default, choices and help written once in :mod:`pix2pix.config`.

    Flags left out do not appear in the parsed namespace at all (``SUPPRESS``), so
    :func:`config_from_flags` lets the dataclass fill in its own defaults and a resumed
    run can tell "not given" from "given the default"."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names or "help" not in f.metadata:
            continue
        meta = f.metadata
        group = groups.get(meta["group"]) or groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS}
        if isinstance(f.default, bool):
            kwargs |= {"action": "store_true", "help": meta["help"]}
        else:
            kwargs |= {"type": type(f.default), "choices": meta["choices"],
                       "help": f"{meta['help']} (default: {f.default})"}
        group.add_argument(flag, **kwargs)


def config_from_flags(cls, args: argparse.Namespace):
    """The config dataclass from the flags that were given; the rest keep their defaults."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


def _add_train(sub) -> None:
    from .config import RECIPES, ModelConfig, TrainConfig

    p = sub.add_parser("train", help="train or fine-tune a model on a folder of pairs",
                       description="Train pix2pix on DATA (side-by-side images, A/ and B/ folders, "
                                   "label/photo files with the same name, optionally in train/ val/ test/).")
    p.add_argument("data", nargs="?", help="data folder (optional with --resume)")
    p.add_argument("--out", help="run folder (default: runs/<data folder name>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint "
                                                       "(--epochs/--steps extend it)")
    p.add_argument("--init", metavar="MODEL", help="start the generator from a saved model (fine-tuning; "
                                                   "its architecture is kept)")
    p.add_argument("--val-list", metavar="FILE", help="names (one per line) to hold out for validation")
    p.add_argument("--description", default="", help="one line describing the model (shown in the app)")
    p.add_argument("--no-yield", action="store_true", help="keep training while the app on this machine answers "
                   "someone (by default the run pauses between steps then, up to 10 s at a time)")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="a named set of settings, which flags given here "
                   "override: paper (Isola et al. as published), clean (resize-convolution decoder and a "
                   "moving average of the generator: no checkerboard, cleaner images on small compute) or v2 "
                   "(clean, with DiffAugment and spectral normalization in D: chosen at equal time)")
    add_config_flags(p, TrainConfig)
    add_config_flags(p, ModelConfig)
    p.set_defaults(func=cmd_train)


def _read_list(path: str | None) -> list[str] | None:
    if not path:
        return None
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]


def cmd_train(args) -> int:
    from .config import RECIPES, ModelConfig, ModelInfo, TrainConfig
    from .training.priority import YieldToRequests
    from .training.progress import TqdmCallback
    from .training.trainer import Trainer

    stop = threading.Event()
    _stop_on_ctrl_c(stop)
    callbacks = [TqdmCallback()] + ([] if args.no_yield else [YieldToRequests(stop)])
    if args.resume:
        trainer = Trainer.resume(args.resume, epochs=getattr(args, "epochs", 0), steps=getattr(args, "steps", 0),
                                 data=args.data, callbacks=callbacks, stop=stop)
    else:
        if not args.data:
            raise SystemExit("error: give a DATA folder (or --resume RUN_DIR)")
        out = args.out or str(Path("runs") / Path(args.data).resolve().name)
        for name, value in RECIPES.get(args.recipe, {}).items():
            if not hasattr(args, name):  # flags given explicitly win over the recipe
                setattr(args, name, value)
        mcfg, tcfg = config_from_flags(ModelConfig, args), config_from_flags(TrainConfig, args)
        info = ModelInfo(description=args.description) if args.description else None
        trainer = Trainer(args.data, out, mcfg, tcfg, init=args.init, callbacks=callbacks, stop=stop,
                          info=info, val_list=_read_list(args.val_list))
    end = trainer.fit()
    return 0 if end.status in ("finished", "stopped") else 1


def _stop_on_ctrl_c(stop: threading.Event) -> None:
    """First Ctrl-C: finish the current step, save a checkpoint and the model, exit.
    Second Ctrl-C: abort at once (the last checkpoint on disk stays intact)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning("stopping after this step (Ctrl-C again to abort)")

    signal.signal(signal.SIGINT, handler)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="turn a sketch (or a folder of them) into images")
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("--model", required=True, help="shipped model name, model folder or weights file")
    p.add_argument("--output", required=True, help="output file (for one input) or folder")
    p.add_argument("--seed", type=int, default=None, help="test-time noise (dropout) with this seed: a variation")
    p.add_argument("--hints", metavar="FILE_OR_FOLDER",
                   help="colour hints for a hint model: an RGBA image the size of the input (colour where painted, "
                        "transparent elsewhere); for a folder of inputs, a folder of hint files with the same names")
    p.add_argument("--raw", action="store_true", help="skip sketch normalization (crop to content, line cleanup)")
    p.add_argument("--keep-everything", action="store_true",
                   help="frame the whole page: by default notes, a border, colour swatches and specks beside the "
                        "drawing are left out (and said so)")
    p.add_argument("--keep-size", action="store_true", help="resize each result back to its input's size")
    p.add_argument("--what", metavar="CLASS", default="",
                   help="for a class model: what the drawings show, one of its classes (`models` lists them); "
                        "by default it guesses")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args) -> int:
    from .errors import Pix2PixError
    from .images.imaging import is_image_file, open_image, save_image
    from .inference.infer import Sketch2Image

    model = Sketch2Image.load(args.model, device=args.device, precision=args.precision)
    src, dst = Path(args.input), Path(args.output)
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if is_image_file(p))
        if not files:
            raise ValueError(f"No images in {src}.")
        targets = [(f, dst / f"{f.stem}.png") for f in files]
    elif src.is_file():
        targets = [(src, dst / f"{src.stem}.png" if dst.is_dir() else dst)]
    else:
        raise ValueError(f"{src} does not exist.")
    hint_files = _hint_files(args.hints, [f for f, _ in targets], many=src.is_dir())
    if args.hints and not model.takes_hints:
        log.warning("%s takes no colour hints: --hints is ignored", args.model)
        hint_files = {}
    if args.what and not model.classes:
        log.warning("%s is told no class: --what is ignored", args.model)
    elif args.what and args.what.strip().lower() not in model.classes:
        raise ValueError(f"--what {args.what}: {args.model} knows {', '.join(model.classes)}.")
    done = 0
    for f, out in targets:
        try:
            image = open_image(f)
            hints = open_image(hint_files[f]) if f in hint_files else None
            prepared = model.prepare(image, hints, raw=args.raw, keep_everything=args.keep_everything, what=args.what)
            if prepared.left_out:
                log.info("%s: %s", f.name, prepared.said())
        except Pix2PixError as e:
            log.warning("skipped %s: %s", f.name, e)
            continue
        result = model.generate(prepared, seed=args.seed)
        if args.keep_size:
            result = result.resize(image.size)
        save_image(result, out)
        done += 1
    log.info("wrote %d image(s) to %s", done, dst)
    return 0 if done else 1


def _hint_files(hints: str | None, sources: list[Path], *, many: bool) -> dict[Path, Path]:
    """Each source's hint layer: the --hints file itself (one input), or the file with the
    same stem in the --hints folder; sources without one are left out (no hints for them)."""
    if not hints:
        return {}
    hints = Path(hints)
    if not hints.exists():
        raise ValueError(f"{hints} does not exist.")
    if hints.is_file() and not many:
        return {sources[0]: hints}
    if not hints.is_dir():
        raise ValueError(f"--hints must be a folder when the input is a folder: {hints}")
    by_stem: dict[str, Path] = {}
    for p in sorted(hints.iterdir()):  # listed once, whatever the number of inputs
        if p.is_file():
            by_stem.setdefault(p.stem, p)
    return {s: by_stem[s.stem] for s in sources if s.stem in by_stem}


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="L1 / PSNR / SSIM of a model on a folder of pairs (prints JSON)")
    p.add_argument("data")
    p.add_argument("--model", help="model to evaluate (or use --baseline)")
    p.add_argument("--baseline", choices=("white", "mean", "input"), help="score a trivial predictor instead")
    p.add_argument("--direction", choices=DIRECTIONS, default="AtoB")
    p.add_argument("--split", default="auto", help="auto (test, else val, else all), train, val, test or all")
    p.add_argument("--val-list", metavar="FILE", help="evaluate on exactly these names")
    p.add_argument("--outlines", action="store_true", help="DATA holds photos only: make inputs with the outline extractor")
    p.add_argument("--photo-aspect", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--grid", metavar="PNG", help="also save a sample grid (input | target | output) of the first pairs")
    p.add_argument("--grid-rows", type=int, default=6)
    p.add_argument("--hints", type=int, default=0, metavar="N",
                   help="give a hint model N colour hints per pair, sampled from the target (compare with 0)")
    p.add_argument("--hint-seed", type=int, default=0, help="seed of the sampled hints (the same pairs get the same hints)")
    p.add_argument("--source", help="of a mixed data folder (mix.json), only the pairs of this source")
    p.add_argument("--norm", choices=("running", "image"), default="running",
                   help="BatchNorm at test time: the statistics saved with the model, or each image's own (the paper's "
                        "test-time batch statistics at batch size 1)")
    p.add_argument("--hint-style", choices=("dabs", "strokes"), default="dabs",
                   help="dabs: N small dabs of the local colour; strokes: N 10-px strokes of the object's colour across "
                        "it, running over its outline (a broad brush)")
    p.add_argument("--untold", action="store_true",
                   help="a class model is not told each pair's class from the data's labels: it guesses, as in the "
                        "app's Auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help="number format of the model's passes")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .training.evaluate import evaluate
    from .inference.infer import Sketch2Image

    if not args.model and not args.baseline:
        raise ValueError("give --model or --baseline")
    model = Sketch2Image.load(args.model, device=args.device, precision=args.precision) if args.model else None
    result = evaluate(
        model, args.data, direction=args.direction, split=args.split, val_list=_read_list(args.val_list),
        outlines=args.outlines, photo_aspect=args.photo_aspect, baseline=args.baseline,
        batch_size=args.batch_size, limit=args.limit, grid=args.grid, grid_rows=args.grid_rows,
        hints=args.hints, hint_seed=args.hint_seed, hint_style=args.hint_style, source=args.source, norm=args.norm,
        untold=args.untold,
    )
    print(json.dumps(result))
    return 0


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="inference latency and training throughput (prints JSON)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--runs", type=int, default=30, help="timed inference runs")
    p.add_argument("--train-steps", type=int, default=8, help="timed training steps (0: skip)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain fp32 reference")
    p.add_argument("--upsample", choices=UPSAMPLES, default="transpose", help="decoder upsampling of the model timed")
    p.add_argument("--model", help="time this saved model (a name or folder) instead of a fresh one of --ngf/--upsample")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from .bench import run_bench

    print(json.dumps(run_bench(args.ngf, args.device, args.precision, args.runs, args.train_steps, not args.no_baseline,
                               upsample=args.upsample, model=args.model)))
    return 0


def _add_outlines(sub) -> None:
    p = sub.add_parser("outlines", help="draw outlines from photos, as the trainer's --outlines does")
    p.add_argument("input", help="a photo or a folder of photos")
    p.add_argument("--output", required=True, help="output file (for one photo) or folder")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--pairs", action="store_true", help="write a paired folder: OUTPUT/A/ the outlines, OUTPUT/B/ "
                   "each photo framed exactly as its outline (pixel-aligned; train on it without --outlines)")
    p.add_argument("--photo-aspect", type=float, default=0.0,
                   help="restore squashed photos to this width/height first (0.75 for fashion-products)")
    p.set_defaults(func=cmd_outlines)


def cmd_outlines(args) -> int:
    """Clean outlines of photos as PNGs, framed and normalized like training inputs.

    INPUT is an image or a folder (searched recursively; relative paths are kept under
    OUTPUT). For a single image, OUTPUT is the file to write, or a folder when it has no
    image extension. With ``--pairs``, OUTPUT is a folder that gets the outlines in ``A/`` and
    the photos, framed like them, in ``B/``. Unreadable photos and ones without an object are
    logged and skipped.
    """
    from .images.imaging import IMAGE_EXTS, ImageReadError, is_image_file, save_image
    from .images.pairs import OutlinePairMaker

    src, out = Path(args.input), Path(args.output)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such file or folder")
    if src.is_dir():
        out_root = out.resolve()
        jobs = [(p, out / p.relative_to(src).with_suffix(".png")) for p in sorted(src.rglob("*"))
                if is_image_file(p) and out_root not in p.resolve().parents]
    else:
        single = out if out.suffix.lower() in IMAGE_EXTS and not args.pairs else out / f"{src.stem}.png"
        jobs = [(src, single)]
    maker = OutlinePairMaker(args.size, augment=False, aspect=args.photo_aspect or None)
    written = 0
    for photo, dst in jobs:
        try:
            outline, framed = maker(photo)
            if args.pairs:
                rel = dst.relative_to(out)
                save_image(outline, out / "A" / rel)
                save_image(framed, out / "B" / rel)
            else:
                save_image(outline, dst)
            written += 1
        except ImageReadError as e:
            log.warning("skipped %s", e)
    log.info("wrote %d outline(s) to %s", written, out)
    return 0 if written else 1


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the models available (shipped and fine-tuned)")
    p.set_defaults(func=cmd_models)


def cmd_models(args) -> int:
    from .catalog import list_models

    entries = list_models()
    if not entries:
        print("no models installed")
    for e in entries:
        where = "shipped" if e.shipped else "fine-tuned"
        told = f" (--what {'|'.join(e.config.classes)})" if e.config.classes else ""
        print(f"{e.name:24s} {where:10s} ngf={e.config.ngf:<3d} {e.info.input_kind:7s} {e.info.description}{told}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pix2pix", description="pix2pix: sketch-to-image models")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_generate, _add_evaluate, _add_bench, _add_outlines, _add_models):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", 0))
    level = logging.WARNING if args.quiet or rank != 0 else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    from .errors import Pix2PixError

    try:
        return args.func(args)
    except (Pix2PixError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
