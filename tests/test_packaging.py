"""`pip install .` gives a working `pix2pix` command with the shipped models, away from the checkout."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, cli_env, shape_pair

pytestmark = pytest.mark.slow  # builds and installs a wheel


def pinned_requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return sorted(line.split("#")[0].strip() for line in lines if line.split("#")[0].strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without its dependencies, which this
    environment already has) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"  # a clean copy: building must not write into the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "datasets", "test-output",
                                                             "build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return tmp


def test_the_wheel_declares_the_pinned_dependencies_and_the_command(installed):
    (wheel,) = (installed / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith("/METADATA"))).decode()
        entry_points = z.read(next(n for n in z.namelist() if n.endswith("/entry_points.txt"))).decode()
    requires = sorted(line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:"))
    assert requires == pinned_requirements()
    assert "pix2pix = pix2pix.cli:main" in entry_points


def test_the_installed_command_finds_the_shipped_models_and_generates(installed, tmp_path):
    command = installed / "site" / "bin" / "pix2pix"
    env = cli_env(PYTHONPATH=str(installed / "site"))
    env.pop("PIX2PIX_WEIGHTS", None)
    listed = subprocess.run([str(command), "models"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    shipped = {line.split()[0] for line in listed.stdout.splitlines() if " shipped " in line}
    assert shipped >= {"fashion", "facades"}

    sketch, _ = shape_pair(3, 256)
    sketch.save(tmp_path / "sketch.png")
    made = subprocess.run([str(command), "generate", "sketch.png", "--model", "fashion", "--output", "out.png"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "out.png").is_file()
    where = subprocess.run([sys.executable, "-c", "from pix2pix import catalog; print(catalog.weights_dir())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()) == installed / "site" / "pix2pix" / "weights"  # not the checkout's
