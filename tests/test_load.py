"""Many API users at once against ``python app.py``: no errors and no wrong answers.

Bounded: 8 clients x 5 requests on a tiny model. The speed figures come from
``scripts/bench_load.py`` (the same round, bigger), never from a timed test.
"""

from __future__ import annotations

import sys
import time

import pytest

from appkit import SKETCH_MODEL, AppProcess, make_models
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import bench_load  # noqa: E402

pytestmark = pytest.mark.slow  # a real app.py process and 8 client threads


def test_eight_clients_at_once_get_their_own_right_answers(tmp_path, monkeypatch):
    from gradio_client import Client

    make_models(tmp_path / "runs")
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "no-weights"))
    files = []
    for k in range(12):
        files.append(tmp_path / f"sketch{k:02d}.png")
        bench_load.random_sketch(k).save(files[-1])
    with AppProcess(tmp_path / "app.log", "--runs", str(tmp_path / "runs"), "--model", SKETCH_MODEL) as app:
        app.wait_serving()
        app.wait_log(" ready ")
        client = Client(app.url, verbose=False, download_files=str(tmp_path))
        refs = [bench_load.ask(client, f, SKETCH_MODEL) for f in files]  # one at a time: the references
        results = {}
        for route in ("gradio", "http"):  # through the queue, and the plain HTTP route beside it
            # One level of 255: with the app's several threads a batch may sum in another order.
            args = bench_load.parse_args(["--requests", "5", "--model", SKETCH_MODEL, "--tolerance", "1",
                                          "--route", route])  # the benchmark's own defaults for the rest
            args.app_pid = app.proc.pid
            results[route] = bench_load.one_round(app.url, files, refs, args, clients=8, deadline=time.time() + 240)
        log = app.log.read_text()
    for route, result in results.items():
        print(f"\n8 clients x 5 requests, {route}: {result}")
        assert result["requests"] == 40 and result["errors"] == 0, result["first_errors"]
        assert result["wrong"] == 0 and result["max_pixel_diff"] <= 1
    assert "Traceback" not in log
