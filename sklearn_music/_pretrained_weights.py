"""The weights of the pretrained models shipped as package data, read safely.

Both :mod:`sklearn_music.pretrained` (``load``: a fitted pipeline) and
:class:`~sklearn_music.ConvEmbedder` (``init=``: fine-tuning from the pretrained
trunk) read the files through this module, so that neither imports the other.
The files hold plain tensors and numbers, read with ``torch.load(weights_only=True)``.
"""

from pathlib import Path

# name -> file in sklearn_music/pretrained/
MODELS = {"soundtracks-v1": "soundtracks-v1.pt"}

# the model that ConvEmbedder(init="auto") starts from when the data and the
# architecture fit it
DEFAULT_MODEL = "soundtracks-v1"

# the ConvEmbedder parameters that fix the shapes of the trunk's weights
ARCHITECTURE_PARAMS = ("embedding_dim", "n_filters", "n_conv", "pooling", "hidden_units")

# the module prefix of the trunk (``MultiHeadNet.encoder``): what fine-tuning loads
TRUNK_PREFIX = "encoder."


def read_payload(name):
    """The saved payload of the pretrained model ``name`` (plain tensors and numbers).

    Raises
    ------
    FileNotFoundError
        If the weights are missing from this installation.
    """
    import torch

    path = Path(__file__).parent / "pretrained" / MODELS[name]
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: the weights of the pretrained model {name!r} are missing from "
            "this installation; make them with scripts/train_pretrained.py"
        )
    return torch.load(path, weights_only=True, map_location="cpu")


def shipped_architecture(payload, defaults):
    """The architecture parameters of a payload's ConvEmbedder.

    ``defaults`` (``ConvEmbedder().get_params()``) fill in the parameters that the
    payload does not list.
    """
    params = dict(defaults) | dict(payload["embedder_params"])
    return {k: _plain(params[k]) for k in ARCHITECTURE_PARAMS}


def _plain(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _wrong_architecture(est, payload):
    """The architecture parameters of ``est`` that differ from the payload's, as text."""
    shipped = shipped_architecture(payload, type(est)().get_params())
    return shipped, [
        f"{k}={shipped[k]!r} (got {_plain(getattr(est, k))!r})"
        for k in ARCHITECTURE_PARAMS
        if _plain(getattr(est, k)) != shipped[k]
    ]


def fits_architecture(est, payload, n_mels):
    """Whether ``est`` and input of ``n_mels`` bands fit the payload's trunk."""
    return not _wrong_architecture(est, payload)[1] and int(n_mels) == int(payload["n_mels"])


def check_architecture(est, payload, n_mels):
    """Raise ValueError unless ``est`` and the input fit the pretrained trunk.

    Parameters
    ----------
    est : ConvEmbedder
        The estimator fitted with ``init=<name>``.
    payload : dict
        :func:`read_payload`'s result.
    n_mels : int
        Mel bands of the training spectrograms.
    """
    shipped, wrong = _wrong_architecture(est, payload)
    if wrong:
        raise ValueError(
            f"init={est.init!r} loads the trunk of the pretrained model, whose "
            f"architecture needs {', '.join(wrong)}; set these parameters, e.g. "
            f"ConvEmbedder(init={est.init!r}, "
            + ", ".join(f"{k}={shipped[k]!r}" for k in ARCHITECTURE_PARAMS)
            + ")"
        )
    if int(n_mels) != int(payload["n_mels"]):
        raise ValueError(
            f"init={est.init!r}: X has {n_mels} mel bands, but the pretrained model "
            f"was trained on {int(payload['n_mels'])}; compute the spectrograms with "
            f"MelSpectrogramTransformer(**{dict(payload['mel_params'])!r})"
        )


def trunk_state(payload):
    """The trunk's tensors of a payload (``encoder.*``), without its projection head."""
    return {k: v for k, v in payload["state_dict"].items() if k.startswith(TRUNK_PREFIX)}
