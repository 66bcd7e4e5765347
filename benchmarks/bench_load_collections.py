"""Load every audio file of one or more collections; print which ones are rejected.

Usage::

    python benchmarks/bench_load_collections.py DATA_DIR [DATA_DIR ...] [--sr 16000]

With no ``DATA_DIR`` the folders come from the environment variable
``SKLEARN_MUSIC_DATA`` (several separated by ``os.pathsep``). Every file under each
folder whose extension is an audio format is read with
:func:`sklearn_music.io.load_audio`, whole; folders whose name starts with a dot are
skipped, symbolic links are followed. Each rejection and each warning is printed
with its reason, then a summary (files tried, loaded, rejected, hours of audio,
seconds taken).

The collections are taken to hold only valid files (the open dev and wide
collections of ``shared/datasets/debian_soundtracks.py`` do), so the exit status is 1
when any file is rejected, 2 when there is nothing to load, 0 otherwise.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

AUDIO_EXTENSIONS = {
    ".aif",
    ".aifc",
    ".aiff",
    ".au",
    ".caf",
    ".flac",
    ".m4a",
    ".mp3",
    ".oga",
    ".ogg",
    ".opus",
    ".w64",
    ".wav",
}


def audio_files(root):
    """The audio files under ``root``, sorted, skipping hidden folders."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(folder) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS
        )
    return sorted(found)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "data_dirs", nargs="*", help="folders of audio (default: $SKLEARN_MUSIC_DATA)"
    )
    parser.add_argument("--sr", type=int, default=16000, help="sampling rate to load at")
    args = parser.parse_args(argv)
    dirs = args.data_dirs or [
        d for d in os.environ.get("SKLEARN_MUSIC_DATA", "").split(os.pathsep) if d
    ]
    if not dirs:
        parser.error("give DATA_DIR arguments or set SKLEARN_MUSIC_DATA")

    from sklearn_music.io import AudioLoadError, load_audio

    tried, rejected, warned, seconds = 0, [], [], 0.0
    by_ext = {}
    t0 = time.perf_counter()
    for root in dirs:
        for path in audio_files(root):
            tried += 1
            ext = path.suffix.lower()
            by_ext.setdefault(ext, [0, 0])[0] += 1
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    y = load_audio(path, sr=args.sr)
            except AudioLoadError as exc:
                rejected.append((path, str(exc)))
                by_ext[ext][1] += 1
                print(f"REJECTED {path}: {exc}", flush=True)
                continue
            seconds += y.size / args.sr
            for w in caught:
                warned.append(path)
                print(f"WARNED {path}: {w.message}", flush=True)
    elapsed = time.perf_counter() - t0

    print(f"\nfolders: {' '.join(str(d) for d in dirs)}")
    for ext, (n, bad) in sorted(by_ext.items()):
        print(f"  {ext:6s} tried {n:5d}  rejected {bad:3d}")
    print(
        f"files tried: {tried}  loaded: {tried - len(rejected)}  rejected: {len(rejected)}"
        f"  (loaded with a warning: {len(warned)})  audio: {seconds / 3600:.2f} h"
        f"  time: {elapsed:.0f} s (sr={args.sr})"
    )
    if not tried:
        return 2
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
