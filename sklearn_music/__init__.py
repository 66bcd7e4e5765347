"""Content-based music similarity with scikit-learn estimators.

audio → :class:`MelSpectrogramTransformer` → :class:`ConvEmbedder` →
:class:`NearestTracks`, each an ordinary scikit-learn estimator.

Heavy dependencies (torch, skorch, pynndescent) are imported only when the estimator
that needs them is used, so ``import sklearn_music`` stays light.
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> private module that defines it
_LAZY = {
    "AudioLoadError": "io",
    "load_audio": "io",
    "MelSpectrogramTransformer": "_mel",
    "make_clips": "_clips",
    "MFCCStatistics": "_baseline",
    "ConvEmbedder": "_embedder",
    "MultimodalEmbedder": "_multimodal",
    "add_spectrograms": "_side",
    "NearestTracks": "_neighbors",
    "ImplicitFactors": "_factors",
    "embed": "pretrained",
    "query_audio": "_query",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"sklearn_music.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sklearn_music' has no attribute {name!r}")


def __dir__():
    return __all__
