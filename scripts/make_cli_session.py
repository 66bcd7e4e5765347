"""Write ``docs/cli_session.txt``: the example session of ``docs/cli.rst``, as printed.

Makes the folder of the page (24 synthetic tracks of 3 genres and one new track) in a
temporary directory, runs every command there and writes each one (``$ ...``) with
its standard output; the progress bars, on standard error, are left out.

    python scripts/make_cli_session.py [--out docs/cli_session.txt]
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS = [
    "sklearn-music fit music --model model.skops --epochs 5",
    "sklearn-music index music --model model.skops --store tracks.db",
    "sklearn-music similar rock/track01.wav --store tracks.db -k 3",
    "sklearn-music similar new/song.wav --store tracks.db --model model.skops -k 3",
    "sklearn-music similar rock/track01.wav --store tracks.db -k 2 --format json",
    "sklearn-music recommend rock/track01.wav rock/track02.wav jazz/track03.wav "
    "--store tracks.db -k 4 --aggregate clusters --format csv",
    "sklearn-music export --store tracks.db --out vectors.npy",
    "head -n 2 vectors.ids.jsonl",
]


def make_folder(root):
    """The page's folder: music/<genre>/trackNN.wav and new/song.wav."""
    import soundfile as sf

    from sklearn_music.datasets import make_tracks

    tracks = make_tracks(24, n_genres=3, duration=4.0, random_state=0)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        os.makedirs(root / "music" / genre, exist_ok=True)
        sf.write(root / "music" / genre / f"track{i:02d}.wav", x, tracks.sr)
    os.makedirs(root / "new", exist_ok=True)
    new = make_tracks(1, n_genres=3, duration=4.0, random_state=99).data[0]
    sf.write(root / "new" / "song.wav", new, tracks.sr)


def run(command, cwd):
    """Standard output of one command of the session (``sklearn-music`` as this Python's)."""
    argv = shlex.split(command)
    if argv[0] == "sklearn-music":
        argv = [sys.executable, "-m", "sklearn_music", *argv[1:]]
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/cli_session.txt")
    args = parser.parse_args(argv)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        make_folder(Path(tmp))
        for command in COMMANDS:
            lines.append(f"$ {command}\n" + run(command, tmp))
    Path(args.out).write_text("".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
