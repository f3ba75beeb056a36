import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import torch

from conftest import ROOT, cli_env, write_side_by_side
from pix2pix.training import judging, run_data, trainer as train_module
from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.training.data import scan
from pix2pix.training.dataset import PairedDataset
from pix2pix.io import load_checkpoint, load_pretrained, save_checkpoint
from pix2pix.training.metrics import image_metrics
from pix2pix.models import build_generator
from pix2pix.training.objective import Pix2Pix, lr_factor
from pix2pix.training.progress import Callback, RunMonitor
from pix2pix.training.trainer import Trainer, TrainingError

TINY = ModelConfig(ngf=8, ndf=8, image_size=32)
NOISY = ModelConfig(ngf=8, ndf=8, image_size=64)  # at 64 the U-Net has a dropout layer: steps draw random numbers


def tiny_cfg(**kw) -> TrainConfig:
    # 8 pairs, 2 held out: 3 steps per epoch
    return TrainConfig(**{"epochs": 2, "batch_size": 2, "val_fraction": 0.25, "workers": 0, "seed": 1} | kw)


def assert_same_networks(run_a, run_b):
    """Every tensor of G and D (weights, BatchNorm statistics) and both optimizers, bit for bit."""
    a = load_checkpoint(run_a / "checkpoints" / "last.pt")
    b = load_checkpoint(run_b / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] and ("G_ema" in a) == ("G_ema" in b)
    for net in ("G", "D", "G_ema") if "G_ema" in a else ("G", "D"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for opt in ("opt_G", "opt_D"):
        for i, state in a[opt]["state"].items():
            for k, v in state.items():
                assert torch.equal(v, b[opt]["state"][i][k]), (opt, i, k)


def log_records(run):
    log = run / "log.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


class StopAt(Callback):
    """Sets the stop event once the run has done ``step`` steps (as the app's Stop button does)."""

    def __init__(self, step: int):
        self.step, self.stop = step, threading.Event()

    def on_step(self, ev):
        if ev.step == self.step:
            self.stop.set()


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


def test_objective_state_round_trip_continues_identically(tmp_path):
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    first = Pix2Pix(TINY, tiny_cfg(), torch.device("cpu"), total_steps=10)
    for _ in range(3):
        first.step(a, b)
    save_checkpoint(tmp_path / "objective.pt", first.state_dict())
    second = Pix2Pix(TINY, tiny_cfg(), torch.device("cpu"), total_steps=10)
    second.load_state_dict(load_checkpoint(tmp_path / "objective.pt"))
    assert second.lr == first.lr and second.sched_G.last_epoch == 3
    for model in (first, second):
        torch.manual_seed(5)  # the same dropout masks for both
        model.step(a, b)
    for k, v in first.G.state_dict().items():
        assert torch.equal(v, second.G.state_dict()[k]), k


def test_run_folder_contents(tiny_data, tmp_path):
    events = []

    class Record(Callback):
        def on_start(self, ev):
            events.append(("start", ev))

        def on_step(self, ev):
            events.append(("step", ev))

        def on_epoch(self, ev):
            events.append(("epoch", ev))

        def on_checkpoint(self, path, step):
            events.append(("checkpoint", step))

        def on_end(self, ev):
            events.append(("end", ev))

    end = Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(), callbacks=[Record()]).fit()
    assert end.status == "finished" and end.step == 6 and end.epoch == 2  # 6 train pairs / batch 2 * 2 epochs
    run = tmp_path / "run"
    lines = log_records(run)
    assert [(x["epoch"], x["step"]) for x in lines] == [(1, 3), (2, 6)]
    assert {"loss_G_GAN", "loss_G_L1", "loss_D_real", "loss_D_fake", "val_l1", "val_psnr", "val_ssim"} <= lines[0].keys()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert json.loads((run / "split.json").read_text())["val"]  # the split is recorded
    assert json.loads((run / "run.json").read_text())["scan"]["layout"] == "side-by-side"
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("step") == 6 and kinds.count("epoch") == 2
    assert [s for k, s in events if k == "checkpoint"] == [3, 6]
    assert events[1][1].eta_s >= 0 and events[1][1].total == 6
    g, cfg, info = load_pretrained(run / "model")
    assert cfg == TINY and info.steps == 6 and info.epochs == 2
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    assert (ckpt["version"], ckpt["step"], ckpt["steps_per_epoch"]) == (train_module.CHECKPOINT_VERSION, 6, 3)
    assert "epoch" not in ckpt  # the step alone places a run


RECIPE = {"hints": True, "ema": 0.9, "feature_matching": 10.0}  # every option that keeps state or draws numbers
D_RECIPE = {"diffaugment": "color,translation,cutout", "gan_loss": "hinge", "spectral_norm": True, "d_scales": 2,
            "r1": 1.0, "r1_every": 2}  # D's options: random draws, power-iteration state, a second D, R1 now and then


@pytest.mark.parametrize("stop_at, recipe", [(4, {}), (3, {}), (8, {}), (4, RECIPE), (5, D_RECIPE)])  # mid-epoch 2, end of 1, mid-3
def test_stop_then_resume_is_bit_identical_to_an_uninterrupted_run(tiny_data, tmp_path, stop_at, recipe):
    assert any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in build_generator(NOISY).modules())
    model_cfg = replace(NOISY, upsample="resize") if recipe else NOISY
    Trainer(tiny_data, tmp_path / "straight", model_cfg, tiny_cfg(epochs=3, **recipe)).fit()

    stopper = StopAt(stop_at)
    first = Trainer(tiny_data, tmp_path / "split", model_cfg, tiny_cfg(epochs=3, **recipe), callbacks=[stopper],
                    stop=stopper.stop).fit()
    assert first.status == "stopped" and first.step == stop_at
    split = tmp_path / "split"
    # a stop leaves a checkpoint and a usable model at once, but no record or grid for a partial
    # epoch, nor yet for the epoch the stop itself ended (it is validated when the run resumes)
    assert load_checkpoint(split / "checkpoints" / "last.pt")["step"] == stop_at
    assert load_pretrained(split / "model")[2].steps == stop_at
    done = (stop_at - 1) // 3
    assert [x["epoch"] for x in log_records(split)] == list(range(1, done + 1))
    assert len(list((split / "samples").glob("*.png"))) == done

    second = Trainer.resume(split).fit()
    assert second.status == "finished" and second.step == 9 and second.epoch == 3
    assert_same_networks(tmp_path / "straight", split)
    # each epoch logged once, with the same losses and metrics as the uninterrupted run
    straight, resumed = log_records(tmp_path / "straight"), log_records(split)
    assert [x["epoch"] for x in resumed] == [1, 2, 3]
    assert [{k: v for k, v in x.items() if k != "time"} for x in resumed] == \
           [{k: v for k, v in x.items() if k != "time"} for x in straight]
    assert (split / "samples" / "epoch_0003.png").read_bytes() == (tmp_path / "straight" / "samples" / "epoch_0003.png").read_bytes()


class StopIn(Callback):
    """Records the phases of the run by step, and sets the stop event when it enters
    ``phase`` after ``step`` (Stop pressed while it validates or saves)."""

    def __init__(self, phase: str, step: int):
        self.phase, self.step, self.at, self.phases, self.stop = phase, step, 0, [], threading.Event()

    def on_step(self, ev):
        self.at = ev.step
        if self.phase == "step" and ev.step == self.step:
            self.stop.set()

    def on_phase(self, phase):
        self.phases.append((self.at, phase))
        if phase == self.phase and self.at == self.step:
            self.stop.set()


def test_a_stop_while_validating_ends_there_and_the_resumed_run_validates_that_epoch(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "straight", NOISY, tiny_cfg(epochs=3)).fit()
    stopper = StopIn("validating", 3)
    split = tmp_path / "split"
    end = Trainer(tiny_data, split, NOISY, tiny_cfg(epochs=3), callbacks=[stopper], stop=stopper.stop).fit()
    assert end.status == "stopped" and end.step == 3
    assert log_records(split) == [] and not list(split.glob("samples/*.png"))  # cut short: nothing written
    assert load_pretrained(split / "model")[2].steps == 3

    resumed = StopIn("none", 0)
    assert Trainer.resume(split, callbacks=[resumed]).fit().step == 9
    assert resumed.phases[:2] == [(0, "re-estimating BatchNorm statistics"), (0, "validating")]  # before any step
    assert_same_networks(tmp_path / "straight", split)
    assert [{k: v for k, v in x.items() if k != "time"} for x in log_records(split)] == \
           [{k: v for k, v in x.items() if k != "time"} for x in log_records(tmp_path / "straight")]


def test_a_stop_saves_on_a_few_images_without_validating(tiny_data, tmp_path, monkeypatch):
    used = []
    real = judging.recalibrate_bn
    monkeypatch.setattr(judging, "recalibrate_bn", lambda G, ds, keys, *a, **k: used.append(len(keys)) or
                        real(G, ds, keys, *a, **k))
    monkeypatch.setattr(judging, "STOP_BN_IMAGES", 2)
    stopper = StopIn("step", 4)
    Trainer(tiny_data, tmp_path / "run", NOISY, tiny_cfg(epochs=3), callbacks=[stopper], stop=stopper.stop).fit()
    # the end of epoch 1 on all 6 training images; the stop at step 4 on 2, then saved, no validation
    assert used == [6, 2]
    assert [p for at, p in stopper.phases if at == 4] == ["re-estimating BatchNorm statistics", "saving", ""]


def test_a_version_1_checkpoint_still_resumes(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "straight", NOISY, tiny_cfg(epochs=3)).fit()
    stopper = StopAt(4)
    Trainer(tiny_data, tmp_path / "old", NOISY, tiny_cfg(epochs=3), callbacks=[stopper], stop=stopper.stop).fit()
    path = tmp_path / "old" / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    for key in ("steps_per_epoch", "world_size", "loss_sums", "loss_steps"):
        del state[key]
    save_checkpoint(path, state | {"version": 1, "epoch": 1, "batch_in_epoch": 1})  # as version 1 wrote it
    assert Trainer.resume(tmp_path / "old").fit().step == 9
    assert_same_networks(tmp_path / "straight", tmp_path / "old")


def test_resume_extends_with_the_decay_and_refuses_to_overwrite(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1)).fit()
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1)).fit()
    seen = []

    class FirstStep(Callback):
        def on_start(self, ev):
            seen.append(trainer.model.lr)  # the rate the first resumed step will use

    trainer = Trainer.resume(tmp_path / "run", epochs=2, callbacks=[FirstStep()])
    end = trainer.fit()
    assert end.step == 6 and end.epoch == 2
    # at step 3 of 6 the decay (from half-way) has not begun; the 3-step run had decayed to 0 here
    assert seen == [pytest.approx(2e-4 * lr_factor(3, 6, 0.5))] and seen[0] > 0
    assert [x["epoch"] for x in log_records(tmp_path / "run")] == [1, 2]
    with pytest.raises(TrainingError, match="Nothing to resume"):
        Trainer.resume(tmp_path / "nothing")


def test_resume_refuses_data_that_changed_the_epoch_length(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1)).fit()
    write_side_by_side(tiny_data, 4, start=50)  # 4 more pairs: 5 steps per epoch instead of 3
    with pytest.raises(TrainingError, match="steps per epoch"):
        Trainer.resume(tmp_path / "run", epochs=2).fit()


def test_fine_tune_loads_the_init_model_once(tiny_data, tmp_path, monkeypatch):
    Trainer(tiny_data, tmp_path / "base", TINY, tiny_cfg(epochs=1)).fit()
    calls = []
    real = run_data.load_pretrained
    monkeypatch.setattr(run_data, "load_pretrained", lambda ref: calls.append(ref) or real(ref))
    # --init reads the architecture from the model, whatever ModelConfig says
    end = Trainer(tiny_data, tmp_path / "ft", ModelConfig(ngf=64), tiny_cfg(epochs=1, lr=1e-4), init=tmp_path / "base").fit()
    assert end.status == "finished" and calls == [tmp_path / "base"]
    _, cfg, _ = load_pretrained(tmp_path / "ft")
    assert cfg.ngf == 8


def test_a_model_trained_small_grows_to_twice_its_size(tiny_data, tmp_path):
    """Progressive growing: a run at 32 px, then --grow from it trains and saves a 64 px model
    that started as the small one, discriminator included."""
    Trainer(tiny_data, tmp_path / "small", ModelConfig(ngf=8, ndf=8, image_size=32), tiny_cfg(epochs=1)).fit()
    end = Trainer(tiny_data, tmp_path / "grown", TINY, tiny_cfg(epochs=1, grow=True), init=tmp_path / "small").fit()
    assert end.status == "finished"
    g, cfg, _ = load_pretrained(tmp_path / "grown" / "model")
    assert (cfg.image_size, len(g.down)) == (64, 6)
    small = load_checkpoint(tmp_path / "small" / "checkpoints" / "last.pt")["D"]
    assert small.keys() == load_checkpoint(tmp_path / "grown" / "checkpoints" / "last.pt")["D"].keys()
    with pytest.raises(TrainingError, match="--grow grows the --init model"):
        Trainer(tiny_data, tmp_path / "nothing", TINY, tiny_cfg(epochs=1, grow=True)).fit()


CLI_TRAIN = ["--ngf", "8", "--ndf", "8", "--size", "64", "--batch-size", "2", "--workers", "0", "--seed", "1",
             "--val-fraction", "0.25"]


@pytest.mark.slow
def test_killed_run_resumes_exactly(tiny_data, tmp_path):
    """SIGKILL at an arbitrary moment: the checkpoint on disk stays loadable and the resumed
    run ends where an uninterrupted one does, bit for bit."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pix2pix", "-q", "train", str(tiny_data), "--out", str(run), "--epochs", "40", *CLI_TRAIN]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and load_checkpoint(ckpt)["step"] >= 9):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(ckpt)
    assert state["step"] >= 9 and state["step"] % 3 == 0  # checkpoints at epoch ends
    assert not [p for p in ckpt.parent.iterdir() if p.name != "last.pt"]  # no half-written leftovers kept
    monitor = RunMonitor()
    end = Trainer.resume(run, callbacks=[monitor]).fit()
    assert end.status == "finished" and end.step == 120 and end.epoch == 40
    assert monitor.snapshot().history[0]["step"] == state["step"] + 1
    assert [x["epoch"] for x in log_records(run)] == list(range(1, 41))
    Trainer(tiny_data, tmp_path / "straight", NOISY, tiny_cfg(epochs=40)).fit()
    assert_same_networks(tmp_path / "straight", run)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resumes_exactly(tiny_data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "pix2pix", "train", str(tiny_data), "--out", str(run), "--epochs", "40", *CLI_TRAIN]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (run / "log.jsonl").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    stopped_at = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert 0 < stopped_at < 120
    assert Trainer.resume(run).fit().step == 120
    assert [x["epoch"] for x in log_records(run)] == list(range(1, 41))
    Trainer(tiny_data, tmp_path / "straight", NOISY, tiny_cfg(epochs=40)).fit()
    assert_same_networks(tmp_path / "straight", run)


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
    a = Trainer(tiny_data, tmp_path / "w0", NOISY, tiny_cfg(epochs=1, workers=0)).fit()
    b = Trainer(tiny_data, tmp_path / "w2", NOISY, tiny_cfg(epochs=1, workers=2)).fit()
    assert a.step == b.step
    assert_same_networks(tmp_path / "w0", tmp_path / "w2")


def test_a_run_saves_its_model_in_fp16_with_the_outputs_of_its_fp32_generator(tiny_data, tmp_path):
    from safetensors.torch import load_file

    Trainer(tiny_data, tmp_path / "run", NOISY, tiny_cfg(epochs=1)).fit()
    tensors = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert {str(v.dtype) for k, v in tensors.items() if v.is_floating_point() and "running_" not in k} == {"torch.float16"}
    assert {str(v.dtype) for k, v in tensors.items() if "running_" in k} == {"torch.float32"}
    saved, _, info = load_pretrained(tmp_path / "run")
    assert info.steps == 3 and 0 <= info.extra["val_l1"] <= 2  # what the app lists the model by
    full = build_generator(NOISY)
    full.load_state_dict(load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["G"])
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        diff = (saved(x) - full.eval()(x)).abs()
    assert diff.max() < 0.02 and diff.mean() < 0.002, (diff.max(), diff.mean())  # parity: fp16 rounding only


def test_timed_length_waits_for_enough_timing_then_fills_the_time_left():
    margin = train_module.TIMING_MARGIN
    assert train_module.timed_length(600, 2, 70, 2, 30) == 0  # too few steps timed
    assert train_module.timed_length(600, 50, 20, 50, 30) == 0  # not timed long enough yet
    assert train_module.timed_length(540, 10, 30, 12, 30) == 12 + int(540 * margin * 10 / 30)
    assert train_module.timed_length(-5, 10, 30, 12, 30) == 12  # already over: stop now


def test_a_run_of_so_many_minutes_times_itself_and_keeps_its_length_on_resume(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "TIMING_S", 0.2)
    totals = []

    class Totals(Callback):
        def on_start(self, ev):
            totals.append(ev.total_steps)

        def on_step(self, ev):
            totals.append(ev.total)

    end = Trainer(tiny_data, tmp_path / "run", TINY, tiny_cfg(epochs=1, minutes=0.05), callbacks=[Totals()]).fit()
    assert end.status == "finished" and end.step >= 3
    assert totals[0] == 0 and totals[-1] == end.step  # unknown at first, then the timed length
    assert sorted(set(totals) - {0}) == [end.step]  # fixed once, never moved
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["train_config"]["steps"] == end.step and ckpt["step"] == end.step
    again = Trainer.resume(tmp_path / "run", steps=end.step + 3).fit()
    assert again.step == end.step + 3  # an explicit length wins over the minutes


def test_minutes_alone_are_a_length_and_bad_minutes_are_refused():
    TrainConfig(epochs=0, minutes=2)
    with pytest.raises(ValueError, match="one epoch, one step or a few minutes"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="must be at least 0"):
        TrainConfig(minutes=-1)


def test_a_run_saves_on_the_clock_mid_epoch_and_still_resumes_exactly(tiny_data, tmp_path, monkeypatch):
    """--save-minutes: checkpoints between epochs too (a kill loses little), and the run they
    leave is the same as one without them."""
    import pix2pix.training.trainer as trainer_module

    clock = iter(range(0, 10**6, 60))  # a minute passes between any two looks at the clock
    monkeypatch.setattr(trainer_module.time, "time", lambda: float(next(clock)))
    saved = []

    class Saves(Callback):
        def on_checkpoint(self, path, step):
            saved.append(step)

    Trainer(tiny_data, tmp_path / "timed", NOISY, tiny_cfg(epochs=2, save_minutes=1.0), callbacks=[Saves()]).fit()
    monkeypatch.undo()
    assert saved[:2] == [1, 2] and len(saved) >= 6  # every step, mid-epoch included
    Trainer(tiny_data, tmp_path / "plain", NOISY, tiny_cfg(epochs=2)).fit()
    assert_same_networks(tmp_path / "timed", tmp_path / "plain")
