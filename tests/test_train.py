import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from conftest import ROOT, cli_env, write_side_by_side
from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.data import PairedDataset, scan
from pix2pix.io import load_checkpoint, load_pretrained
from pix2pix.metrics import image_metrics
from pix2pix.progress import Callback, RunMonitor
from pix2pix.train import Pix2Pix, Trainer, TrainingError, lr_factor

TINY = ModelConfig(ngf=8, ndf=8, image_size=32)


def tiny_cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 2, "batch_size": 2, "val_fraction": 0.25, "workers": 0, "seed": 1} | kw)


def test_tiny_generator_overfits_two_pairs(tmp_path):
    write_side_by_side(tmp_path / "two", 2, size=32)
    pairs = scan(tmp_path / "two").splits["train"]
    ds = PairedDataset(pairs, image_size=32, train=False)
    a = torch.stack([ds[0][0], ds[1][0]])
    b = torch.stack([ds[0][1], ds[1][1]])
    torch.manual_seed(0)
    model = Pix2Pix(ModelConfig(ngf=16, ndf=8, image_size=32, dropout=0.0), TrainConfig(lr=1e-3), torch.device("cpu"))

    def val_l1():
        model.G.eval()
        with torch.no_grad():
            out = image_metrics(model.G(a), b)["l1"].mean().item()
        model.G.train()
        return out

    before = val_l1()
    for _ in range(300):
        model.step(a, b)
    after = val_l1()
    assert after < 0.35 * before, (before, after)


def test_run_folder_contents(tiny_data, tmp_path):
    events = []

    class Record(Callback):
        def on_start(self, ev):
            events.append(("start", ev))

        def on_step(self, ev):
            events.append(("step", ev))

        def on_epoch(self, ev):
            events.append(("epoch", ev))

        def on_end(self, ev):
            events.append(("end", ev))

    end = Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(), callbacks=[Record()]).fit()
    assert end.status == "finished" and end.step == 6  # 6 train pairs / batch 2 * 2 epochs
    run = tmp_path / "run"
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert {"loss_G_GAN", "loss_G_L1", "loss_D_real", "loss_D_fake", "val_l1", "val_psnr", "val_ssim"} <= lines[0].keys()
    assert (run / lines[-1]["sample"]).is_file()
    assert json.loads((run / "split.json").read_text())["val"]  # the split is recorded
    assert json.loads((run / "run.json").read_text())["scan"]["layout"] == "side-by-side"
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("step") == 6 and kinds.count("epoch") == 2
    assert events[1][1].eta_s >= 0 and events[1][1].total == 6
    g, cfg, info = load_pretrained(run / "model")
    assert cfg == TINY and info.steps == 6 and info.epochs == 2


def test_stop_then_resume_matches_an_uninterrupted_run(tiny_data, tmp_path):
    straight = Trainer(tiny_data, tmp_path / "straight", TINY, tiny_cfg(epochs=3)).fit()

    stop = threading.Event()

    class StopAt(Callback):
        def on_step(self, ev):
            if ev.step == 4:  # mid-epoch 2
                stop.set()

    first = Trainer(tiny_data, tmp_path / "split", TINY, tiny_cfg(epochs=3), callbacks=[StopAt()], stop=stop).fit()
    assert first.status == "stopped" and first.step == 4
    ckpt = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]) == (4, 1, 1)
    second = Trainer.resume(tmp_path / "split").fit()
    assert second.status == "finished" and second.step == straight.step == 9
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    for k in a["G"]:
        assert torch.allclose(a["G"][k].float(), b["G"][k].float(), atol=1e-6), k
    assert a["opt_D"]["state"][0]["step"] == b["opt_D"]["state"][0]["step"]


def test_resume_can_extend_and_refuses_to_overwrite(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1)).fit()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1)).fit()
    end = Trainer.resume(tmp_path / "run", epochs=2).fit()
    assert end.step == 6 and end.epoch == 2
    with pytest.raises(TrainingError, match="Nothing to resume"):
        Trainer.resume(tmp_path / "nothing").fit()


def test_killed_run_resumes_from_its_last_checkpoint(tiny_data, tmp_path):
    """SIGKILL at an arbitrary moment: the checkpoint on disk stays loadable and the
    resumed run continues its counters to the planned end."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pix2pix", "-q", "train", str(tiny_data), "--out", str(run), "--ngf", "8", "--ndf", "8",
           "--size", "32", "--epochs", "40", "--batch-size", "2", "--workers", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and load_checkpoint(ckpt)["epoch"] >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(ckpt)
    assert state["epoch"] >= 3 and state["step"] == state["epoch"] * 4
    assert not [p for p in ckpt.parent.iterdir() if p.name != "last.pt"]  # no half-written leftovers kept
    monitor = RunMonitor()
    end = Trainer.resume(run, callbacks=[monitor]).fit()
    assert end.status == "finished" and end.step == 160 and end.epoch == 40
    assert monitor.snapshot().history[0]["step"] == state["step"] + 1
    steps = [json.loads(x)["step"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 160


def test_fine_tune_from_a_saved_model(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "base", TINY, tiny_cfg(epochs=1)).fit()
    # --init reads the architecture from the model, whatever ModelConfig says
    end = Trainer(tiny_data, tmp_path / "ft", ModelConfig(ngf=64), tiny_cfg(epochs=1, lr=1e-4), init=tmp_path / "base").fit()
    assert end.status == "finished"
    _, cfg, _ = load_pretrained(tmp_path / "ft")
    assert cfg.ngf == 8


def test_sigint_stops_cleanly(tiny_data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pix2pix", "train", str(tiny_data), "--out", str(run), "--ngf", "8", "--ndf", "8",
           "--size", "32", "--epochs", "1000", "--workers", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "log.jsonl").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] > 0


def test_lr_decays_linearly_over_the_last_half():
    assert lr_factor(0, 100, 0.5) == 1.0 and lr_factor(50, 100, 0.5) == 1.0
    assert lr_factor(75, 100, 0.5) == pytest.approx(0.5)
    assert lr_factor(100, 100, 0.5) == 0.0
    assert lr_factor(99, 100, 1.0) == 1.0


def test_bad_data_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="does not exist"):
        Trainer(tmp_path / "nope", tmp_path / "run", TINY, tiny_cfg()).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_loader_workers_give_the_same_batches(tiny_data, tmp_path):
    a = Trainer(tiny_data, tmp_path / "w0", TINY, tiny_cfg(epochs=1, workers=0)).fit()
    b = Trainer(tiny_data, tmp_path / "w2", TINY, tiny_cfg(epochs=1, workers=2)).fit()
    ga = load_checkpoint(tmp_path / "w0" / "checkpoints" / "last.pt")["G"]
    gb = load_checkpoint(tmp_path / "w2" / "checkpoints" / "last.pt")["G"]
    assert a.step == b.step
    assert all(torch.allclose(ga[k].float(), gb[k].float(), atol=1e-6) for k in ga)
