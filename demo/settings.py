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
    default_model: str | None = None  # None: PREFERRED_MODEL if installed, else the first model
    data_roots: list[Path] = field(default_factory=lambda: [REPO_ROOT / "datasets"])
    upload_dir: Path | None = None  # uploaded zips are extracted here; None: <first data root>/uploads
    examples_dir: Path = EXAMPLES_DIR
    max_sketch_mb: int = 20  # largest sketch file the Upload tab accepts
    max_zip_mb: int = 1024  # largest .zip the Fine-tune tab accepts (the page's upload limit)
    _jobs: object = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def uploads(self) -> Path:
        return self.upload_dir or self.data_roots[0] / "uploads"

    @property
    def jobs(self):
        """The app's one training slot, shared by every browser session (made on first use:
        the library's training module imports torch)."""
        with self._lock:
            if self._jobs is None:
                from pix2pix.jobs import TrainingJobs

                self._jobs = TrainingJobs()
            return self._jobs
