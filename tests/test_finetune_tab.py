"""The Fine-tune tab's handlers without a browser: what the progress says while stopping, a
reopened page getting the run back, and telling apart, renaming and trimming fine-tuned runs."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from appkit import SKETCH_MODEL, make_models
from conftest import write_side_by_side
from demo import models, run_storage, training, training_data, training_view
from demo.settings import Settings
from pix2pix.training.progress import MonitorState


@pytest.fixture
def settings(tmp_path, monkeypatch):
    make_models(tmp_path / "runs")
    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "no-weights"))
    return Settings(default_model=SKETCH_MODEL, data_roots=[tmp_path / "datasets"])


@pytest.fixture
def finished(settings):
    """A 3-step run from scratch called "mine", ended."""
    write_side_by_side(settings.data_roots[0] / "shapes", 8)
    _, checked, *_ = training_data.check_folder(settings, "shapes", False, "")
    training.start(settings, checked, photos_only=False, init=models.SCRATCH, unit="steps", length=3, lr=2e-4,
                   batch_size=1, direction="AtoB", val_fraction=0.25, name="mine", ngf=8, ndf=8, input_kind="auto")
    assert settings.jobs.wait(240)
    return settings


def test_stopping_says_what_the_run_does_instead_of_a_frozen_eta():
    state = MonitorState(status="stopping", step=4, total=20, eta_s=75, images_per_s=2.5, phase="saving",
                         message="Stopping after the current step…")
    shown = training_view.progress_html(state)
    assert "<b>Stopping</b>" in shown and "saving…" in shown and "left" not in shown and "images/s" not in shown
    judging = training_view.progress_html(MonitorState(status="running", step=6, total=20, eta_s=75, images_per_s=2.5,
                                                  phase="validating"))
    assert "validating…" in judging and "left" not in judging


def test_the_loss_legend_names_every_line_in_its_colour():
    legend = training_view.loss_legend()
    for name in ("G_GAN", "G_L1", "D_real", "D_fake", "G_FM"):
        assert f"{training_view.LOSS_COLOURS[name]}\"></i><b>{name}</b>" in legend


def test_a_reopened_page_gets_the_plot_samples_and_sizes_of_the_last_run(finished):
    folders, init, progress, plot, sample, metrics, shown, timer, usage, _, *form = training.open_tab(finished)
    assert "Finished" in progress and "(model " in progress and "run folder" in progress
    assert plot.startswith("<svg") and plot.count("<path") == 4  # a line per loss
    assert all(f'stroke="{training_view.LOSS_COLOURS[k]}"' in plot for k in ("G_GAN", "G_L1", "D_real", "D_fake"))
    assert sample.size[0] > 0 and shown.endswith(".png") and "Validation" in metrics and not timer.active


def test_a_page_opened_before_any_run_shows_nothing_to_bring_back(settings):
    assert training.open_tab(settings)[2:7] == (training_view.IDLE, None, None, "", None)


def test_a_stray_file_among_the_runs_is_no_run_and_breaks_nothing(settings, tmp_path):
    (tmp_path / "runs" / "train.log").write_text("a log kept next to the runs\n")
    usage, choices = run_storage.storage(settings)
    assert "train.log" not in str(choices.choices) and f"run/{SKETCH_MODEL}" in str(choices.choices)
    assert "**Runs**" in usage and training.open_tab(settings)[2] == training_view.IDLE


def test_fine_tuned_models_say_when_how_long_and_how_well(finished):
    label = dict((v, k) for k, v in models.choices(models.available()))["mine"]
    assert " steps · val L1 0." in label and "3 steps" in label, label
    assert dict((v, k) for k, v in models.choices(models.available()))[SKETCH_MODEL].startswith(SKETCH_MODEL)
    choices = dict((v, k) for k, v in run_storage.storage(finished)[1].constructor_args["choices"])
    assert "3 steps · val L1" in choices["run/mine"]
    assert choices["checkpoints/mine"].startswith("checkpoints of mine · ") and "the model stays" in choices["checkpoints/mine"]
    assert "checkpoints/" + SKETCH_MODEL not in choices  # no checkpoints there: nothing to offer


def test_deleting_a_runs_checkpoints_keeps_its_model(finished):
    question, row, _ = run_storage.ask_delete(finished, "checkpoints/mine")
    assert "checkpoints of **mine**" in question and "can no longer be resumed" in question and row.visible
    run_storage.delete(finished, "checkpoints/mine", None)
    run = Path(models.find(models.available(), "mine").path).parent
    assert not (run / "checkpoints").exists() and (run / "model" / "model.safetensors").is_file()
    choices = dict((v, k) for k, v in run_storage.storage(finished)[1].constructor_args["choices"])
    assert "run/mine" in choices and "checkpoints/mine" not in choices


def test_renaming_a_run_renames_its_model_and_it_still_resumes(finished):
    from pix2pix.training.trainer import Trainer

    box, row, _ = run_storage.ask_rename(finished, "run/mine")
    assert box.value == "mine" and row.visible
    run_storage.rename(finished, "run/mine", "shapes-best")
    entry = models.find(models.available(), "shapes-best")
    assert entry is not None and entry.info.name == "shapes-best" and models.find(models.available(), "mine") is None
    assert Trainer.resume(entry.path.parent, steps=4).fit().step == 4


@pytest.mark.parametrize("choice, name, message", [
    ("run/mine", "with space", "name of letters"),
    ("run/mine", SKETCH_MODEL, "already exists"),
    ("upload/x", "y", "Only a run"),
    (None, "y", "Choose an upload or a run"),
])
def test_a_bad_rename_gets_a_sentence(finished, choice, name, message):
    with pytest.raises(gr.Error, match=message):
        run_storage.rename(finished, choice, name)
    assert models.find(models.available(), "mine") is not None


@pytest.mark.parametrize("field, value, message", [
    ("length", 0, "How many: train for at least 1 step; got 0"),
    ("length", None, "How many: train for at least 1 step; got nothing"),
    ("batch_size", 0, "Batch size must be at least 1"),
    ("lr", -1.0, r"Learning rate \(lr\) must be at least 0"),
    ("ngf", 0, r"Generator width \(ngf\) must be at least 1"),
    ("batch_size", 2.5, "Batch size must be a whole number"),
])
def test_a_wrong_number_in_the_form_is_named(settings, caplog, field, value, message):
    write_side_by_side(settings.data_roots[0] / "shapes", 8)
    _, checked, *_ = training_data.check_folder(settings, "shapes", False, "")
    form = dict(photos_only=False, init=models.SCRATCH, unit="steps", length=3, lr=2e-4, batch_size=1,
                direction="AtoB", val_fraction=0.25, name="bad", ngf=8, ndf=8, input_kind="auto") | {field: value}
    with pytest.raises(gr.Error, match=message):
        training.start(settings, checked, **form)
    assert "Traceback" not in caplog.text and not settings.jobs.running


def test_out_of_view_the_progress_poll_changes_nothing_until_the_run_ends(settings, monkeypatch):
    """On the Draw tab a running fine-tune's plot and samples are not re-sent every second
    (redrawing them costs the browser the CPU a drawing needs); its end still reaches the pickers."""
    state = MonitorState(status="running", step=2, total=20)
    monkeypatch.setattr(type(settings.jobs), "snapshot", lambda self: state)
    monkeypatch.setattr(type(settings.jobs), "running", property(lambda self: state.status == "running"))

    def chosen(label):
        return training.tab_watcher(settings, "Fine-tune")(gr.SelectData(None, {"index": 0, "value": label}))

    in_view, timer = chosen("Draw")
    assert in_view is False and timer.active and timer.value == training.AWAY_POLL_S
    assert all(output == gr.skip() for output in training.poll(settings, None, in_view))
    in_view, timer = chosen("Fine-tune")
    assert in_view is True and timer.value == training.POLL_S
    shown = training.poll(settings, None, in_view)
    assert "step 2 / 20" in shown[0] and shown[5].active
    from pix2pix.training.priority import interactive

    with interactive():  # someone draws: the run waits, and only its progress line is sent
        drawing = training.poll(settings, None, in_view)
    assert "step 2 / 20" in drawing[0] and all(output == gr.skip() for output in drawing[1:])
    state = MonitorState(status="finished", step=20, total=20)
    ended = training.poll(settings, None, False)
    assert not ended[5].active and ended[6] != gr.skip()  # the pickers learn of the new model


def test_a_page_reloaded_during_a_run_shows_the_settings_it_was_started_with(settings):
    write_side_by_side(settings.data_roots[0] / "shapes", 8)
    _, checked, *_ = training_data.check_folder(settings, "shapes", False, "")
    training.start(settings, checked, photos_only=False, init=models.SCRATCH, unit="steps", length=5000, lr=1e-4,
                   batch_size=1, direction="BtoA", val_fraction=0.25, name="long-one", ngf=8, ndf=8,
                   input_kind="auto")
    try:
        folders, init, *rest = training.open_tab(settings)
        form = dict(zip(training.FORM, rest[-len(training.FORM):]))
        assert folders.value == checked and init.value == models.SCRATCH
        assert {k: form[k]["value"] for k in ("unit", "length", "lr", "batch", "direction", "name")} == \
            {"unit": "steps", "length": 5000, "lr": 1e-4, "batch": 1, "direction": "BtoA", "name": "long-one"}
    finally:
        training.stop(settings)
        assert settings.jobs.wait(600)  # a stop lands between steps; the app's run is niced, so a busy machine delays it
    after = training.open_tab(settings)[-len(training.FORM):]  # ended: the form is the user's again
    assert all(not isinstance(f, dict) or "value" not in f for f in after)
