"""Multi-process training: the same command under torchrun, two CPU processes on gloo."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist

from conftest import ROOT, cli_env

pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo"),
    pytest.mark.slow,  # torchrun subprocesses
]

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def test_torchrun_cli_two_processes(tiny_data, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [*TORCHRUN, "-m", "pix2pix", "train", str(tiny_data), "--out", str(run), "--ngf", "8", "--ndf", "8",
         "--size", "32", "--epochs", "2", "--batch-size", "1", "--workers", "0"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    # 7 training pairs (1 held out) sharded over 2 ranks: 4 steps per epoch each
    assert [(x["epoch"], x["step"]) for x in lines] == [(1, 4), (2, 8)]
    assert (run / "model" / "model.safetensors").is_file()


def test_ranks_stay_in_sync(tiny_data, tmp_path):
    # The script owns the process group, as a caller embedding the trainer would. Each rank
    # writes its own parameters: no collective runs after fit(), so none can still be in
    # flight in a gloo thread when the interpreter exits (see training.distributed.process_group).
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch, torch.distributed as dist
        sys.path.insert(0, {str(ROOT)!r})
        from pix2pix.config import ModelConfig, TrainConfig
        from pix2pix.training.trainer import Trainer
        dist.init_process_group("gloo")
        cfg = TrainConfig(epochs=2, batch_size=2, workers=0, val_fraction=0.0)
        t = Trainer({str(tiny_data)!r}, {str(tmp_path / "run")!r}, ModelConfig(ngf=8, ndf=8, image_size=64), cfg)
        end = t.fit()
        params = {{f"{{net}}.{{k}}": p.detach() for net in ("G", "D") for k, p in getattr(t.model, net).named_parameters()}}
        torch.save({{"step": end.step, "params": params}}, {str(tmp_path)!r} + f"/rank{{dist.get_rank()}}.pt")
        dist.destroy_process_group()
    """))
    proc = subprocess.run([*TORCHRUN, str(script)], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    (tmp_path / "stderr.txt").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-8000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 4  # 8 pairs / 2 ranks / batch 2, two epochs
    assert r0["params"].keys() == r1["params"].keys() and len(r0["params"]) > 10
    for k, p in r0["params"].items():
        assert torch.equal(p, r1["params"][k]), k
