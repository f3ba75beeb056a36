"""How a training step runs is measured on the machine and remembered; what it computes is not
changed by it."""

import pytest
import torch

from conftest import write_side_by_side
from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.inference import fastpath
from pix2pix.training import speed
from pix2pix.training.objective import Pix2Pix, StepForm
from pix2pix.training.speed import LoaderTrial, measured_form
from pix2pix.training.trainer import Trainer
from test_train import assert_same_networks

TINY = ModelConfig(ngf=8, ndf=8, image_size=32)
TINY_RESIZE = ModelConfig(ngf=8, ndf=8, image_size=32, upsample="resize")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_loader_trial_alternates_keeps_the_faster_and_remembers_it(own_cache):
    trial = LoaderTrial([0, 2], "outlines 256px batch4 hints1")
    seen = []
    while trial.chosen is None:
        workers = trial.workers()
        seen.append(workers)
        trial.timed(0.30 if workers == 0 else 0.45)
    assert seen[:LoaderTrial.BLOCK] == [0] * LoaderTrial.BLOCK and 2 in seen
    assert trial.chosen == 0 and trial.workers() == 0
    again = LoaderTrial([0, 2], "outlines 256px batch4 hints1")
    assert again.chosen == 0  # remembered: the next run on this machine tries nothing
    assert LoaderTrial([0, 2], "pairs 256px batch4 hints0").chosen is None  # other data: tried anew
    assert LoaderTrial([3], "").workers() == 3  # asked for: no trial


def test_the_step_form_is_measured_once_and_compiling_only_for_long_runs(own_cache, monkeypatch):
    cfg = TrainConfig(batch_size=2, epochs=1)
    monkeypatch.setattr(speed, "_compile_pays", lambda *a, **k: pytest.fail("a short run must not time compiling"))
    # A run shorter than its measuring takes the defaults, and measures nothing.
    assert measured_form(TINY, cfg, torch.device("cpu"), None, planned_steps=50) == StepForm()
    assert not (own_cache / fastpath.CACHE_FILE).exists()
    form = measured_form(TINY, cfg, torch.device("cpu"), None, planned_steps=speed.MEASURE_MIN_STEPS)
    assert isinstance(form, StepForm) and not form.compiled and form.adam in speed.ADAM_KINDS
    keys = [k for k in (own_cache / fastpath.CACHE_FILE).read_text().splitlines() if "train step" in k]
    assert len(keys) == 2  # the layout and the optimizer, each timed once
    calls = []
    monkeypatch.setattr(speed, "fastest", lambda c, **k: calls.append(k) or next(iter(c)))
    measured_form(TINY, cfg, torch.device("cpu"), None, planned_steps=500)  # from the cache (fastest not timing)
    monkeypatch.setattr(speed, "_compile_pays", lambda *a, **k: True)
    assert measured_form(TINY, cfg, torch.device("cpu"), None, planned_steps=speed.COMPILE_MIN_STEPS).compiled
    assert not measured_form(TINY, TrainConfig(batch_size=2, epochs=1, compile="off"), torch.device("cpu"), None,
                             planned_steps=10**6).compiled


def test_a_resize_decoder_also_measures_its_folded_form(own_cache):
    cfg = TrainConfig(batch_size=2, epochs=1)
    assert not measured_form(TINY_RESIZE, cfg, torch.device("cpu"), None, planned_steps=50).folded  # too short
    form = measured_form(TINY_RESIZE, cfg, torch.device("cpu"), None, planned_steps=speed.MEASURE_MIN_STEPS)
    keys = [k for k in (own_cache / fastpath.CACHE_FILE).read_text().splitlines() if "train step" in k]
    assert len(keys) == 3 and any("|decoder" in k for k in keys)  # layout, optimizer, decoder
    model = Pix2Pix(TINY_RESIZE, cfg, torch.device("cpu"), form=form)
    assert all(stage.fold_from == (8 if form.folded else 0) for stage in [*model.G.up, model.G.head])


@pytest.mark.parametrize("form", [StepForm(False, "loop"), StepForm(True, "foreach"), StepForm(True, "fused")])
def test_every_form_computes_the_same_step(form):
    """(The folded decoder's gradients are held to the unfolded ones in test_upsampling.py: after
    Adam, whose first steps move every weight by about the learning rate times the sign of its
    gradient, rounding in a near-zero gradient can flip a step.)"""
    batch = [torch.rand(2, 3, 32, 32) * 2 - 1 for _ in range(2)]
    results = []
    for f in (StepForm(), form):
        torch.manual_seed(0)
        model = Pix2Pix(TINY, TrainConfig(batch_size=2, epochs=1), torch.device("cpu"), form=f)
        for _ in range(3):
            model.step(*batch)
        results.append(torch.cat([p.detach().flatten() for p in model.G.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-5), (results[0] - results[1]).abs().max()


def test_a_run_that_tries_its_loader_gives_the_same_model(tmp_path, own_cache):
    """The trial switches between no loader process and one mid-epoch: the batches, and so the
    model, are exactly those of a run with no loader process at all."""
    write_side_by_side(tmp_path / "data", 72)  # enough pairs for a loader process
    cfg = TrainConfig(epochs=1, batch_size=4, val_fraction=0.1, seed=3, save_every=1, sample_every=1)
    Trainer(tmp_path / "data", tmp_path / "trial", TINY, cfg).fit()
    Trainer(tmp_path / "data", tmp_path / "plain", TINY, TrainConfig(**{**cfg.__dict__, "workers": 0})).fit()
    assert_same_networks(tmp_path / "trial", tmp_path / "plain")
