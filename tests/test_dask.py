"""Feature extraction runs on a Dask cluster through joblib's dask backend."""

import joblib
import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("dask")
distributed = pytest.importorskip("dask.distributed")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_mel_on_local_cluster(tmp_path):
    from sklearn_music import MelSpectrogramTransformer
    from sklearn_music.datasets import make_tracks

    sr = 8000
    tracks = make_tracks(6, n_genres=2, duration=1.0, sr=sr, random_state=0)
    paths = []
    for i, x in enumerate(tracks.data):
        sf.write(tmp_path / f"{i}.wav", x, sr)
        paths.append(str(tmp_path / f"{i}.wav"))
    params = dict(sr=sr, n_fft=256, hop_length=128, n_mels=16)
    serial = MelSpectrogramTransformer(**params).fit_transform(paths)

    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            protocol="tcp://",
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as tasks:
            with joblib.parallel_config(backend="dask"):
                parallel = MelSpectrogramTransformer(n_jobs=2, **params).fit_transform(paths)
    assert len(tasks.data) > 0, "no task ran on the Dask cluster"
    np.testing.assert_array_equal(parallel, serial)
