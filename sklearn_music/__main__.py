"""``python -m sklearn_music``: the ``sklearn-music`` command line."""

import sys

from sklearn_music.cli import main

if __name__ == "__main__":
    sys.exit(main())
