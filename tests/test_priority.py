"""The app's fine-tune steps aside while a user waits for a result, within bounds."""

from __future__ import annotations

import threading
import time

from pix2pix.training import priority
from pix2pix.training.priority import YieldToRequests, busy, interactive


def test_a_request_marks_the_process_busy_until_a_grace_period_after_it():
    with interactive():
        assert busy(grace=0.0)
    assert busy(grace=10.0) and not busy(grace=0.0)
    time.sleep(0.06)
    assert not busy(grace=0.05)


def test_a_training_step_waits_while_someone_draws_then_goes_on():
    step = YieldToRequests(threading.Event(), grace=0.05)
    done = threading.Event()

    def draw():  # a drawing session: results 0.2 s long, back to back
        with interactive():
            time.sleep(0.2)
        done.set()

    t = threading.Thread(target=draw)
    t.start()
    time.sleep(0.02)
    start = time.monotonic()
    step.on_step(None)
    waited = time.monotonic() - start
    assert done.is_set() and 0.2 <= waited + 0.02 < 1.0  # until the request and its grace were over
    t.join()
    start = time.monotonic()
    step.on_step(None)
    assert time.monotonic() - start < 0.05  # nobody drawing: no wait


def test_the_wait_is_bounded_and_a_stop_ends_it_at_once(monkeypatch):
    monkeypatch.setattr(priority, "busy", lambda *_: True)  # an endless stream of API calls
    stop = threading.Event()
    start = time.monotonic()
    YieldToRequests(stop, longest=0.1).on_step(None)
    assert 0.1 <= time.monotonic() - start < 0.5  # training still moves
    stop.set()
    start = time.monotonic()
    YieldToRequests(stop, longest=10).on_step(None)
    assert time.monotonic() - start < 0.05  # Stop stays quick


def test_the_apps_training_run_waits_while_a_user_waits(tiny_data, tmp_path):
    from pix2pix.config import ModelConfig, TrainConfig
    from demo.jobs import TrainingJobs

    jobs = TrainingJobs()
    with interactive():  # a result being made for the whole time
        jobs.start(tiny_data, tmp_path / "run", ModelConfig(ngf=8, ndf=8, image_size=32),
                   TrainConfig(steps=3, batch_size=2, workers=0, val_fraction=0.25))
        deadline = time.monotonic() + 60
        while jobs.snapshot().step < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.8)
        assert jobs.snapshot().step == 1  # one step, then it waits
    deadline = time.monotonic() + 60
    while jobs.snapshot().status not in ("finished", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs.snapshot().status == "finished" and jobs.snapshot().step == 3


def test_a_training_run_in_another_process_hears_of_the_apps_requests(tmp_path):
    """The app touches a marker as it answers; a CLI fine-tune's steps wait on it."""
    import subprocess
    import sys

    marker = tmp_path / "requests"
    assert not busy(grace=0.0, marker=marker)  # no app has run: nothing to wait for
    app = subprocess.Popen([sys.executable, "-c", (
        "import time; from pix2pix.training import priority; priority.share(__import__('pathlib').Path(r'%s'))\n"
        "for _ in range(12):\n    with priority.interactive(): time.sleep(0.05)\n" % marker)])
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    step = YieldToRequests(threading.Event(), grace=0.3, marker=marker)
    start = time.monotonic()
    step.on_step(None)  # waits out the other process's requests and the grace after them
    app.wait(timeout=60)
    assert 0.3 <= time.monotonic() - start and step.waited > 0
    time.sleep(0.35)
    start = time.monotonic()
    step.on_step(None)
    assert time.monotonic() - start < 0.05
