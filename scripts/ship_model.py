"""Copy a trained run's generator into ``weights/<name>/`` as the shipped model.

Stores the weights in fp16 (half the size; BatchNorm statistics stay fp32) and measures
the parity of the fp16 copy against the run's fp32 generator (from its last checkpoint: the
moving average when the run kept one) on the validation inputs, so the model card can state it.

    python scripts/ship_model.py runs/fashion fashion --description "..." \
        --data datasets/fashion --outlines --photo-aspect 0.75
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pix2pix.training.evaluate import select_pairs  # noqa: E402
from pix2pix.training.dataset import PairedDataset  # noqa: E402
from pix2pix.inference.infer import Sketch2Image  # noqa: E402
from pix2pix.catalog import weights_dir  # noqa: E402
from pix2pix.io import load_checkpoint, load_pretrained, save_pretrained  # noqa: E402
from pix2pix.models import build_generator  # noqa: E402


def fp32_generator(run: Path, cfg) -> torch.nn.Module:
    """The run's generator as trained, in fp32: its checkpoint's moving average, else G."""
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    generator = build_generator(cfg)
    generator.load_state_dict(state["G_ema"] if "G_ema" in state else state["G"])
    return generator.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--description", required=True)
    ap.add_argument("--background-label", type=int, default=None)
    ap.add_argument("--data", type=Path, required=True, help="data folder for the parity check")
    ap.add_argument("--val-list", type=Path)
    ap.add_argument("--outlines", action="store_true")
    ap.add_argument("--photo-aspect", type=float, default=0.0)
    args = ap.parse_args()

    generator, cfg, info = load_pretrained(args.run)
    info = replace(info, name=args.name, description=args.description,
                   background_label=args.background_label if args.background_label is not None else info.background_label)
    out = weights_dir() / args.name
    save_pretrained(generator, cfg, info, out, dtype=torch.float16)

    # Parity: fp16-stored weights vs the fp32 run, both through plain fp32 inference.
    val_list = [x.strip() for x in args.val_list.read_text().splitlines() if x.strip() and not x.startswith("#")] if args.val_list else None
    chosen, _ = select_pairs(args.data, split="auto", val_list=val_list, outlines=args.outlines)
    pair_loader = None
    if args.outlines:
        from pix2pix.images.pairs import OutlinePairMaker

        maker = OutlinePairMaker(cfg.image_size, augment=False, aspect=args.photo_aspect or None)
        pair_loader = lambda pair, rng: maker(pair.a, rng)  # noqa: E731
    ds = PairedDataset(chosen.pairs[:32], image_size=cfg.image_size, train=False,
                       labels=info.input_kind == "labels", pair_loader=pair_loader)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        full = fp32_generator(args.run, cfg)(x)
    half = Sketch2Image.load(out, device="cpu", precision="fp32").run(x)
    diff = (full - half).abs()
    report = {
        "model": str(out),
        "bytes": (out / "model.safetensors").stat().st_size,
        "parity_fp16_vs_fp32": {"n": len(ds), "mean_abs": round(diff.mean().item(), 6),
                                "max_abs": round(diff.max().item(), 5), "scale": "[-1, 1]"},
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
