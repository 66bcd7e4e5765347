"""The representations that ``bench_real.py`` compares: one :class:`Row` each.

A row turns a training pool of clips and a test pool into test embeddings. Its
``factory(seed)`` returns an estimator with ``fit``/``transform`` on the row's
``input`` (``"mel"``: log-mel arrays (clips, 128, 938); ``"mfcc"``: MFCC statistics;
``"melstats"``: mean and standard deviation over time of the log-mel (256-d);
``"musicnn:<layer>"``: musicnn's pooled layer, read from ``musicnn_<set>.npz``).
``fit`` says what the estimator is fitted on: ``"labels"`` (the training pool's album
labels), ``"unlabeled"`` (``fit(X)``, no ``y``) or ``"none"`` (already fitted: a
pretrained model, applied as it is). A factory or a fit that cannot run yet raises
:class:`SkipRow` (or ``ImportError``/``NotImplementedError``, or a ``TypeError`` /
``ValueError`` from an unlabeled ``fit``), and the row is reported as skipped with the
message. Adding a row is one line in :func:`default_rows`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MUSICNN_LAYERS = ("taggram", "mean_pool", "max_pool", "penultimate")


class SkipRow(Exception):
    """A row that cannot be computed here (missing features, unsupported fit)."""


@dataclass
class Row:
    name: str
    factory: Callable  # seed -> estimator
    input: str = "mel"
    fit: str = "labels"  # "labels" | "unlabeled" | "none"
    seeded: bool = True  # trained with random_state=seed: run once per seed
    heard: tuple = ()  # sets whose audio the model was trained on before its own fit

    def embed(self, train, test, seed):
        """Fit on the ``train`` pool, return the embeddings of the ``test`` pool."""
        if test["set"] in self.heard:
            raise SkipRow(
                f"its model was trained on the {test['set']} audio: those albums are not unheard"
            )
        est = self.factory(seed)
        X_test = features(test, self.input)
        if np.ndim(X_test) == 2 and np.isnan(X_test).any():
            n = int(np.isnan(X_test).any(axis=1).sum())
            raise SkipRow(f"{n} of {len(X_test)} test clips have no {self.input} features yet")
        if self.fit == "none":
            return est.transform(X_test)
        X_train, y_train = _covered(features(train, self.input), train["album"], self.input)
        if self.fit == "labels":
            est.fit(X_train, y_train)
        else:
            try:
                est.fit(X_train)
            except (TypeError, ValueError) as exc:
                raise SkipRow(f"{type(est).__name__}.fit(X) without y: {exc}") from exc
        return est.transform(X_test)


def features(pool, kind):
    """The ``kind`` input of a pool of clips (a dict of arrays)."""
    if kind == "mel":
        return pool["mel"]
    if kind == "mfcc":
        return pool["mfcc"]
    if kind == "melstats":
        mel = pool["mel"]
        return np.concatenate([mel.mean(axis=2), mel.std(axis=2)], axis=1)
    if kind.startswith("musicnn:"):
        layer = kind.split(":", 1)[1]
        if pool.get("musicnn") is None:
            raise SkipRow(
                f"no musicnn features for the {pool['set']} set: run "
                "benchmarks/_musicnn_features.py in its own environment first"
            )
        return pool["musicnn"][layer]
    raise ValueError(f"unknown row input {kind!r}")


def load_musicnn(path, files, offset):
    """Pooled musicnn layers of the clips ``(files, offset)`` from ``path``, or None.

    The rows of the file are matched to the clips by (file, offset). A file still
    being written (``complete`` false) may lack clips: their rows are NaN.
    """
    from pathlib import Path

    if not Path(path).exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        index = {
            (f, round(float(o), 3)): i for i, (f, o) in enumerate(zip(z["files"], z["offset"]))
        }
        rows = np.array(
            [index.get((str(f), round(float(o), 3)), -1) for f, o in zip(files, offset)]
        )
        out = {}
        for layer in MUSICNN_LAYERS:
            v = z[layer].astype(np.float64)[np.maximum(rows, 0)]
            v[rows < 0] = np.nan
            out[layer] = v
        return out


def _covered(X, y, what):
    """Drop the clips without musicnn features (NaN rows) of a training pool."""
    if not np.issubdtype(np.asarray(X).dtype, np.floating) or np.ndim(X) != 2:
        return X, y
    ok = ~np.isnan(X).any(axis=1)
    if not ok.any():
        raise SkipRow(f"no {what} features for the training clips yet")
    return X[ok], y[ok]


def _standardised():
    from sklearn.preprocessing import StandardScaler

    return StandardScaler()


def conv_embedder(params, n_jobs):
    """Factory of the default ConvEmbedder (its mel step was applied once, cached)."""

    def factory(seed):
        from sklearn_music import ConvEmbedder

        return ConvEmbedder(random_state=seed, n_jobs=n_jobs, **params)

    return factory


def _pretrained(seed):
    try:
        from sklearn_music import pretrained  # noqa: F401
    except ImportError as exc:
        raise SkipRow("sklearn_music.pretrained does not exist yet") from exc
    return mel_step_removed(pretrained.load("soundtracks-v1"))


def mel_step_removed(model):
    """The embedder of a fitted ``Pipeline(MelSpectrogramTransformer(), embedder)``.

    The benchmark caches the default log-mel of every clip, so a pipeline whose first
    step is the default ``MelSpectrogramTransformer`` is applied from its second step.
    """
    from sklearn.pipeline import Pipeline

    from sklearn_music import MelSpectrogramTransformer

    if not isinstance(model, Pipeline):
        return model
    first = model.steps[0][1]
    defaults = MelSpectrogramTransformer().get_params()
    if isinstance(first, MelSpectrogramTransformer) and first.get_params() == defaults:
        return model[1:]
    raise SkipRow(f"the pipeline's first step {first!r} is not the default log-mel")


def row_from_spec(spec):
    """A row from ``NAME=module:function[:fit]`` (``--row``): ``function(seed)`` returns
    an estimator on the log-mel; ``fit`` is ``labels`` (default), ``unlabeled`` or ``none``.
    """
    import importlib

    name, _, target = spec.partition("=")
    module, _, rest = target.partition(":")
    func, _, fit = rest.partition(":")
    if not (name and module and func) or fit not in ("", "labels", "unlabeled", "none"):
        raise ValueError(f"--row {spec!r}: expected NAME=module:function[:labels|unlabeled|none]")

    def factory(seed):
        return getattr(importlib.import_module(module), func)(seed)

    return Row(name, factory, "mel", fit or "labels", seeded=fit != "none")


# the supervised and self-supervised default of the tables' first runs: random initial
# weights and a 64-d embedding (ConvEmbedder's defaults until init="auto")
SCRATCH = {"init": None, "embedding_dim": 64}
# soundtracks-v1 was trained on the audio of the wide set
PRETRAINED_HEARD = ("wide",)


def default_rows(params=None, *, n_jobs=2, musicnn_layers=MUSICNN_LAYERS):
    """The rows of both tables; ``params`` override ConvEmbedder's defaults."""
    params = params or {}
    conv = conv_embedder(SCRATCH | params, n_jobs)
    rows = [
        Row(
            "MFCC statistics (60-d, standardised)", lambda s: _standardised(), "mfcc", seeded=False
        ),
        Row(
            "log-mel mean/std (256-d, standardised)",
            lambda s: _standardised(),
            "melstats",
            seeded=False,
        ),
    ]
    rows += [
        Row(
            f"musicnn MSD, {layer} (standardised)",
            lambda s: _standardised(),
            f"musicnn:{layer}",
            seeded=False,
        )
        for layer in musicnn_layers
    ]
    rows += [
        Row("ConvEmbedder, scratch, album labels", conv, "mel", "labels"),
        Row("ConvEmbedder, self-supervised (fit(X), no y)", conv, "mel", "unlabeled"),
        Row(
            "pretrained soundtracks-v1",
            _pretrained,
            "mel",
            "none",
            seeded=False,
            heard=PRETRAINED_HEARD,
        ),
        Row(
            "ConvEmbedder default (init='auto': from soundtracks-v1), self-supervised (fit(X))",
            conv_embedder(params, n_jobs),
            "mel",
            "unlabeled",
            heard=PRETRAINED_HEARD,
        ),
    ]
    rows += fine_tuned_rows(params, n_jobs)
    return rows


# ConvEmbedder(init="soundtracks-v1") needs the pretrained architecture (the defaults
# since init="auto"; before, the default embedding had 64 dimensions)
PRETRAINED_ARCH = {"embedding_dim": 128}


def fine_tuned_rows(params, n_jobs):
    """Fine-tuning from soundtracks-v1 (album labels), and its controls.

    The first row is what ``ConvEmbedder()`` does by default (``init="auto"`` on the
    default log-mel); ``tests/test_finetune.py`` checks that the two give the same
    weights.
    """
    tuned = params | PRETRAINED_ARCH | {"init": "soundtracks-v1"}
    return [
        Row(
            "ConvEmbedder, fine-tuned from soundtracks-v1, album labels",
            conv_embedder(tuned, n_jobs),
            heard=PRETRAINED_HEARD,
        ),
        Row(
            "ConvEmbedder, soundtracks-v1 fine-tuned at lr 3e-4 for 10 epochs, album labels",
            conv_embedder(tuned | {"lr": 3e-4, "max_epochs": 10}, n_jobs),
            heard=PRETRAINED_HEARD,
        ),
        Row(
            "ConvEmbedder, 128-d random init (the pretrained architecture), album labels",
            conv_embedder({"init": None} | params | PRETRAINED_ARCH, n_jobs),
        ),
    ]
