"""Log-mel spectrograms of audio tracks as a scikit-learn transformer."""

import functools
from numbers import Real

import numpy as np

from ._frontend import _load_track, _MelFrontend, _power_to_db, _stack_or_list
from .io import RES_TYPES
from .utils._docstring import Substitution, _shared_docs
from .utils._sklearn_compat import Interval, StrOptions

__all__ = ["MelSpectrogramTransformer"]


def _mel_track(
    index, track, *, kernel, sr, offset, duration, short_tracks, res_type, log, top_db, log1p_scale
):
    """The float32 (log-)mel spectrogram of one track."""
    y = _load_track(
        index,
        track,
        sr=sr,
        offset=offset,
        duration=duration,
        short_tracks=short_tracks,
        res_type=res_type,
    )
    S = kernel(y)
    if log == "db":
        S = _power_to_db(S, top_db)
    elif log == "log1p":
        S = np.log1p(np.float32(log1p_scale) * S)
    return S.astype(np.float32, copy=False)


@Substitution(**{k: v for k, v in _shared_docs.items() if k.startswith("frontend_")})
class MelSpectrogramTransformer(_MelFrontend):
    """Mel spectrograms of audio tracks, on a log scale by default.

    Each track is read with :func:`sklearn_music.load_audio` (mono, resampled to
    ``sr``), optionally cropped or padded to ``duration`` seconds, and turned into a
    mel power spectrogram equal to :func:`librosa.feature.melspectrogram` with the same
    parameters (Hann window, ``center=True``, ``pad_mode="constant"``, Slaney mel
    filters), then put on the scale ``log`` asks for. The transformer is stateless:
    ``fit`` checks the parameters and learns nothing.

    Parameters
    ----------
    {frontend_sr}
    n_fft : int, default=1024
        Length of the FFT window in samples.
    hop_length : int, default=512
        Samples between successive frames. A track of ``n`` samples gives
        ``1 + n // hop_length`` frames.
    n_mels : int, default=128
        Number of mel bands.
    {frontend_band}
    power : float, default=2.0
        Exponent of the magnitude: 2 for power, 1 for amplitude.
    log : {"db", "log1p"} or None, default="db"
        Scale of the output ``S`` from the mel spectrogram ``M``:

        - ``"db"``: ``10 * log10(max(M, 1e-10))``, i.e.
          ``librosa.power_to_db(M, ref=1.0, amin=1e-10, top_db=top_db)``;
        - ``"log1p"``: ``log1p(log1p_scale * M)`` (Dieleman & Schrauwen, 2014);
        - ``None``: ``M`` itself.
    top_db : float, default=None
        With ``log="db"``, floor each spectrogram at its maximum minus ``top_db`` dB.
        ``None`` (no floor) keeps the values independent of the loudest frame;
        note that librosa's own default is 80.
    log1p_scale : float, default=10000.0
        The constant ``C`` in ``log1p(C * M)`` with ``log="log1p"``.
    {frontend_crop}
    res_type : str, default="soxr_hq"
        Resampler of the files not at ``sr`` (:func:`sklearn_music.load_audio`'s
        ``res_type``): ``"soxr_vhq"``, ``"soxr_hq"``, ``"soxr_mq"``, ``"soxr_lq"``,
        ``"soxr_qq"`` or ``"polyphase"``. Resampling 44.1 kHz files with
        ``"soxr_hq"`` costs about as much as decoding them; ``"soxr_mq"`` is about
        seven times cheaper (see ``benchmarks/bench_e2e.py`` for its effect on
        retrieval).
    {frontend_jobs}

    See Also
    --------
    sklearn_music.load_audio : Reads one track.
    sklearn_music.MFCCStatistics : MFCC summary statistics per track.
    librosa.feature.melspectrogram : The reference this transformer equals.

    Notes
    -----
    **Input.** ``X`` is a sequence of tracks (paths, binary file-like objects, 1-D
    waveforms at ``sr``; integer PCM is scaled to [-1, 1], 2-D arrays are channels
    averaged to mono) or a 2-D array whose rows are equal-length waveforms.

    **Output.** A float32 array ``(n_tracks, n_mels, n_frames)`` when every track
    gives the same number of frames (always so with a 2-D array or ``duration``).
    Otherwise the *ragged form*: a python ``list`` of float32 arrays
    ``(n_mels, n_frames_i)``, in the order of ``X``, which
    :class:`~sklearn_music.ConvEmbedder` accepts as it is.

    **No feature names, no DataFrame output.** The output is 3-D (or ragged), not a
    table of features, so there is no ``get_feature_names_out``, and ``fit`` records
    no ``n_features_in_``: the length of a waveform is free. :meth:`set_output` is
    accepted, so that a :class:`~sklearn.pipeline.Pipeline` whose later steps give
    tables can be set to ``transform="pandas"``, but it leaves this step's output an
    array (as does ``sklearn.set_config(transform_output="pandas")``): a DataFrame
    cannot hold spectrograms. The array carries no index either, so the embeddings
    of such a pipeline come with the index ``0 .. n_tracks - 1`` in the order of
    ``X``; ``Xt.set_axis(df.index)`` puts the index of an input DataFrame back.

    **pandas input.** A :class:`pandas.Series` of paths, or a one-column
    :class:`pandas.DataFrame` of paths (``df[["path"]]``), is read as a sequence of
    tracks.

    **Speed.** The mel filter bank is built once per call of ``transform``; frames are
    transformed in cache-sized blocks with a real FFT in double precision (as librosa
    does) and projected on the filter bank with one float32 matrix product per block.
    See ``benchmarks/bench_mel.py`` for timings against librosa.

    **Caching.** The transformer is deterministic and picklable, so a
    ``Pipeline(memory=...)`` computes the spectrograms of a data set once across a
    grid search. The cache key of a path is its name, not the file's content: clear
    the cache when files change. File-like objects are consumed by reading them; use
    paths or arrays in cached pipelines.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music import MelSpectrogramTransformer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((3, 16000)).astype(np.float32)  # 3 tracks of 1 s
    >>> mel = MelSpectrogramTransformer(n_mels=64)
    >>> mel.fit_transform(X).shape
    (3, 64, 32)
    >>> ragged = mel.transform([X[0], X[1, :8000]])
    >>> [S.shape for S in ragged]
    [(64, 32), (64, 16)]
    """

    _parameter_constraints: dict = {
        **_MelFrontend._parameter_constraints,
        "power": [Interval(Real, 0, None, closed="neither")],
        "log": [StrOptions({"db", "log1p"}), None],
        "log1p_scale": [Interval(Real, 0, None, closed="neither")],
        "res_type": [StrOptions(set(RES_TYPES))],
    }

    # parameters added after 0.1, with the value that keeps an older model's behaviour
    _ADDED_PARAMS = {**_MelFrontend._ADDED_PARAMS, "res_type": "soxr_hq"}

    def __init__(
        self,
        *,
        sr=16000,
        n_fft=1024,
        hop_length=512,
        n_mels=128,
        fmin=0.0,
        fmax=None,
        power=2.0,
        log="db",
        top_db=None,
        log1p_scale=10000.0,
        offset=0.0,
        duration=None,
        short_tracks="error",
        res_type="soxr_hq",
        n_jobs=None,
        verbose=0,
    ):
        self.sr = sr
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.power = power
        self.log = log
        self.top_db = top_db
        self.log1p_scale = log1p_scale
        self.offset = offset
        self.duration = duration
        self.short_tracks = short_tracks
        self.res_type = res_type
        self.n_jobs = n_jobs
        self.verbose = verbose

    def set_output(self, *, transform=None):
        """Accept an output container setting; the output stays an array.

        The spectrograms are 3-D (or ragged), which no DataFrame holds, so this step
        is exempt from ``set_output``: it exists so that a
        :class:`~sklearn.pipeline.Pipeline` with this transformer as its first step
        can be set to DataFrame output for the steps that give tables (the
        embeddings of :class:`~sklearn_music.ConvEmbedder`).

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            Recorded, without effect on :meth:`transform`.

        Returns
        -------
        self : object
            The transformer.

        Examples
        --------
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
        >>> pipe = make_pipeline(MelSpectrogramTransformer(), ConvEmbedder())
        >>> pipe = pipe.set_output(transform="pandas")  # the embeddings: a DataFrame
        """
        if transform is not None:
            # the attribute scikit-learn's set_output writes; transform is not wrapped
            # (no get_feature_names_out), so it only records the request
            self._sklearn_output_config = {"transform": transform}
        return self

    def transform(self, X):
        """Compute the (log-)mel spectrogram of every track.

        Parameters
        ----------
        X : sequence of tracks or array-like of shape (n_tracks, n_samples)
            Paths, file-like objects or 1-D waveforms at ``sr`` (a list, a
            :class:`pandas.Series` or a one-column :class:`pandas.DataFrame`), or a
            2-D array whose rows are waveforms.

        Returns
        -------
        S : ndarray of shape (n_tracks, n_mels, n_frames) or list of ndarray
            Spectrograms of dtype float32; a list of ``(n_mels, n_frames_i)`` arrays when the
            tracks give different numbers of frames (see Notes).

        Raises
        ------
        AudioLoadError
            When a track cannot be read; the message names its index and file.
        """
        kernel, tracks = self._kernel_and_tracks(X, power=float(self.power))
        one = functools.partial(
            _mel_track,
            kernel=kernel,
            sr=self.sr,
            offset=self.offset,
            duration=self.duration,
            short_tracks=self.short_tracks,
            res_type=self.res_type,
            log=self.log,
            top_db=self.top_db,
            log1p_scale=self.log1p_scale,
        )

        return _stack_or_list(self._map(one, tracks, "mel spectrograms"))
