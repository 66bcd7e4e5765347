"""Built-in data: synthesized music and listening histories, folders, the GTZAN fetcher.

Nothing here touches the network at import time; only :func:`fetch_gtzan` downloads, and
only when its data set is not cached yet.
"""

from ._base import clear_data_home, get_data_home
from ._folder import load_audio_folder
from ._gtzan import fetch_gtzan
from ._listening import make_listening
from ._synth import make_tracks

__all__ = [
    "clear_data_home",
    "fetch_gtzan",
    "get_data_home",
    "load_audio_folder",
    "make_listening",
    "make_tracks",
]
