"""What one running app is configured with, and the state its sessions share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PREFERRED_MODEL = "fashion"  # the default when it is installed


@dataclass
class Settings:
    """One app's limits and switches; app.py's flags set them, the tabs state them."""

    default_model: str | None = None  # None: PREFERRED_MODEL if installed, else the first model
    data_roots: list[Path] = field(default_factory=lambda: [REPO_ROOT / "datasets"])
    upload_dir: Path | None = None  # uploaded zips are extracted here; None: <first data root>/uploads
    examples_dir: Path = EXAMPLES_DIR
    max_sketch_mb: int = 20  # largest image file the Upload tab and the API accept
    max_zip_mb: int = 1024  # largest .zip the Fine-tune tab accepts (the only larger upload)
    upload_quota_gb: float = 10.0  # all kept uploads together; the oldest unused go first
    runs_quota_gb: float = 20.0  # all run folders together; no new run starts beyond it
    training: bool = True  # the Fine-tune tab (and its events) exist at all
    auth: tuple[tuple[str, str], ...] = ()  # (user, password) pairs; empty: no login
    _jobs: object = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # One zip is extracted at a time: the quota is checked against what is on disk.
    upload_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    training_data: Path | None = field(default=None, init=False)  # the data of the run this app started
    run_form: dict | None = field(default=None, init=False)  # the Fine-tune form as that run was started

    @property
    def uploads(self) -> Path:
        return self.upload_dir or self.data_roots[0] / "uploads"

    @property
    def upload_quota(self) -> int:
        return int(self.upload_quota_gb * 1e9)

    @property
    def runs_quota(self) -> int:
        return int(self.runs_quota_gb * 1e9)

    @property
    def jobs(self):
        """The app's one training slot, shared by every browser session (made on first use:
        the library's training module imports torch)."""
        with self._lock:
            if self._jobs is None:
                from demo.jobs import TrainingJobs

                self._jobs = TrainingJobs()
            return self._jobs
