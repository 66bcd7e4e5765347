"""The store of the open ``dev`` albums indexed with the pretrained model, by the CLI.

Shared by ``bench_recommend.py`` and ``tutorial_real.py``: the pretrained pipeline
is saved to ``WORKDIR/soundtracks-v1.skops`` and ``sklearn-music index`` writes
``WORKDIR/dev.db`` (track ids are ``album/file`` paths relative to the set folder).
An existing store is reused. Nothing here is committed: the work folder is yours.
"""

import subprocess
import sys
import time
from pathlib import Path


def save_pretrained(workdir):
    """Save ``pretrained.load("soundtracks-v1")`` as a model file the CLI reads."""
    from sklearn_music.persistence import save_model
    from sklearn_music.pretrained import load

    path = Path(workdir) / "soundtracks-v1.skops"
    if not path.exists():
        save_model(load("soundtracks-v1"), path)
    return path


def cli(*args, capture=True):
    """Run ``python -m sklearn_music ARGS``; returns (stdout, seconds), raises on failure."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sklearn_music", *map(str, args)],
        check=True,
        capture_output=capture,
        text=True,
    )
    return done.stdout, time.perf_counter() - t0


def dev_store(folder, workdir):
    """``(store path, model path, seconds of indexing or None if reused)``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = save_pretrained(workdir)
    store = workdir / "dev.db"
    if store.exists():
        return store, model, None
    _, seconds = cli("index", folder, "--model", model, "--store", store, "--no-progress")
    return store, model, seconds
