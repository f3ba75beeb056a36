"""The GPU training stage: pack data here, run it on a borrowed GPU machine, continue on the CPU.

    # here, once: the training pairs as chunk files under 15 MB (one per call to the machine)
    python scripts/gpu_stage.py pack datasets/fashion-v3 --out gpu/chunks --limit 6000
    # there: decode, train until the clock says to save, write G, its EMA and D (fp16, split) to OUT
    python scripts/gpu_stage.py run 'gpu/chunks/*.safetensors' --out "$OUT/stage" --seconds 540 --init fashion
    # a later call, from what the last one wrote (copied back into the tree and carried)
    python scripts/gpu_stage.py run 'gpu/chunks/*.safetensors' --out "$OUT/stage" --resume gpu/stage
    # here again: a model folder (and D beside it) that the app loads and `train --init` continues
    python scripts/gpu_stage.py export gpu/stage runs/fashion-gpu-model

``run`` prints one line of figures at the end (images seen, images/s, the share of the stage
the GPU spent training, where the rest went), also in ``stage.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pix2pix.config import ModelConfig  # noqa: E402
from pix2pix.images.outline_store import OutlineStore  # noqa: E402
from pix2pix.training.gpu_stage import StageConfig, export, run_stage  # noqa: E402
from pix2pix.training.mix import scan_data  # noqa: E402
from pix2pix.training.packed import CHUNK_BYTES, pack  # noqa: E402


def cmd_pack(args) -> int:
    found = scan_data(args.data, outlines=args.outlines)
    pairs = found.splits["train"]
    if args.limit and len(pairs) > args.limit:  # every source keeps its share
        step = len(pairs) / args.limit
        pairs = [pairs[int(i * step)] for i in range(args.limit)]
    files = pack(found, pairs, args.out, store=OutlineStore(), chunk_bytes=int(args.chunk_mb * (1 << 20)),
                 size=args.size)
    total = sum(f.stat().st_size for f in files)
    print(f"packed {len(pairs)} pairs into {len(files)} chunks, {total / (1 << 20):.1f} MB in all: {args.out}")
    return 0


def cmd_run(args) -> int:
    chunks = sorted(Path(p) for p in glob.glob(args.chunks))
    if not chunks:
        raise SystemExit(f"no chunks match {args.chunks}")
    cfg = StageConfig(chunks=chunks, out=args.out, seconds=args.seconds, steps=args.steps, resume=args.resume,
                      init=args.init, batch=args.batch, lr=args.lr, precision=args.precision, compile=args.compile,
                      device=args.device, seed=args.seed, save_every=args.save_every, split_mb=args.split_mb,
                      model=ModelConfig(ngf=args.ngf, ndf=args.ndf, image_size=args.size, upsample="resize",
                                        hint_channels=4))
    state = run_stage(cfg)
    print(json.dumps({k: state[k] for k in ("step", "images", "images_per_s", "busy", "batch", "lr", "precision",
                                            "compiled", "seconds", "timings") if k in state}))
    return 0


def cmd_export(args) -> int:
    print(export(args.stage, args.model))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(required=True)
    p = sub.add_parser("pack", help="training pairs of a data folder (or mix) into chunk files")
    p.add_argument("data", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--outlines", action="store_true", help="a plain folder of photos: inputs drawn as outlines")
    p.add_argument("--limit", type=int, default=0, help="at most this many pairs, spread over the folder")
    p.add_argument("--chunk-mb", type=float, default=CHUNK_BYTES / (1 << 20))
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_pack)
    p = sub.add_parser("run", help="one stage on the machine at hand")
    p.add_argument("chunks", help="a glob of chunk files")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=540.0, help="the whole command ends within this")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps instead")
    p.add_argument("--resume", type=Path)
    p.add_argument("--init", help="start G from this model (a first stage)")
    p.add_argument("--batch", type=int, default=0, help="0: timed")
    p.add_argument("--lr", type=float, default=0.0, help="0: 2e-4 x sqrt(batch / 4), at most 6e-4")
    p.add_argument("--precision", default="auto")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=float, default=120.0)
    p.add_argument("--split-mb", type=float, default=15.5)
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--size", type=int, default=256)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("export", help="a stage folder -> a model folder (and its D)")
    p.add_argument("stage", type=Path)
    p.add_argument("model", type=Path)
    p.set_defaults(func=cmd_export)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
