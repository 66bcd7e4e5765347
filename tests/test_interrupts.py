"""Ctrl-C (SIGINT) stops training: ConvEmbedder.fit, ``sklearn-music fit`` and the demo.

skorch's ``partial_fit`` swallows ``KeyboardInterrupt``; these tests send a real SIGINT
to a child process once training has visibly started (a line printed by a skorch
callback or by the command), never after a fixed sleep only, and check what the user
gets: a ``KeyboardInterrupt`` with the estimator left as it was, exit status 130 and no
model file, a demo that stops.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sklearn_music import ConvEmbedder

ROOT = Path(__file__).resolve().parents[1]
WAIT = 240  # seconds: generous upper bounds for a loaded 2-core machine, never asserted

FIT_SCRIPT = r"""
import json, sys
import numpy as np
from skorch.callbacks import Callback
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from sklearn_music import ConvEmbedder

class Started(Callback):
    def on_epoch_end(self, net, **kwargs):
        print("epoch", len(net.history), flush=True)

mode = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(8, 8, 32)).astype(np.float32)
y = np.repeat([0, 1], 4)
emb = ConvEmbedder(embedding_dim=4, n_filters=4, patch_frames=16, hidden_units=(8,),
                   random_state=0)
report = {}
if mode == "refit":
    emb.set_params(max_epochs=1).fit(X, y)
    before, net_before, mean_before = emb.transform(X), emb.net_, emb.mean_.copy()
    X0, X = X, 3.0 * X + 5.0  # a refit would change mean_, scale_ and the weights
emb.set_params(max_epochs=100000, callbacks=[Started()],
               on_interrupt="keep" if mode == "keep" else "raise")
try:
    emb.fit(X, y)
    report["returned"] = True
    report["epochs"] = len(emb.net_.history)
except KeyboardInterrupt as exc:
    report["raised"] = str(exc)
try:
    check_is_fitted(emb)
    report["fitted"] = True
except NotFittedError:
    report["fitted"] = False
report["learned"] = sorted(k for k in vars(emb) if k.endswith("_") or k.startswith("_n"))
if mode == "refit":
    report["same_net"] = emb.net_ is net_before
    report["same_mean"] = bool(np.array_equal(emb.mean_, mean_before))
    report["same_transform"] = bool(np.array_equal(emb.transform(X0), before))
print("REPORT", json.dumps(report), flush=True)
"""


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _Child:
    """A child process whose merged stdout/stderr lines are read by a thread."""

    def __init__(self, args, cwd=None):
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_env(),
            cwd=cwd,
            # Ctrl-C's default action in the child, as in a terminal: a test run
            # started in the background of a script (`make test &`) ignores SIGINT,
            # and an ignored SIGINT is inherited, so the child would never stop
            preexec_fn=_default_sigint,
        )
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate, timeout=WAIT):
        """Block until a line satisfies ``predicate``; fail if the child ends first."""
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                self.kill()
                pytest.fail(f"no expected line within {timeout} s; output: {self.lines}")
            if line is None:
                pytest.fail(f"the child ended early; output: {''.join(self.lines)}")
            self.lines.append(line)
            if predicate(line):
                return line

    def interrupt_and_wait(self, timeout=WAIT):
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {timeout} s after SIGINT; output: {self.lines}")
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _fit_child(mode):
    child = _Child([sys.executable, "-c", FIT_SCRIPT, mode])
    try:
        child.wait_for(lambda line: line.startswith("epoch"))
        rc = child.interrupt_and_wait()
    finally:
        child.kill()
    reports = [json.loads(line[7:]) for line in child.lines if line.startswith("REPORT ")]
    assert rc == 0 and len(reports) == 1, "".join(child.lines)
    return reports[0]


@pytest.mark.slow
def test_sigint_fit_raises_and_leaves_a_new_estimator_unfitted():
    report = _fit_child("fresh")
    assert "returned" not in report
    assert "interrupted after" in report["raised"]
    assert report["fitted"] is False
    assert report["learned"] == []  # no mean_, scale_, n_features_in_ left behind


@pytest.mark.slow
def test_sigint_refit_keeps_the_previous_fit():
    report = _fit_child("refit")
    assert "interrupted after" in report["raised"]
    assert report["fitted"] is True
    assert report["same_net"] and report["same_mean"] and report["same_transform"]


@pytest.mark.slow
def test_sigint_with_on_interrupt_keep_returns_the_partial_net():
    report = _fit_child("keep")
    assert report["returned"] is True and "raised" not in report
    assert report["fitted"] is True
    assert 1 <= report["epochs"] < 100000


@pytest.fixture
def python_sigint():
    """Python's Ctrl-C handler in this process, as in a terminal, whatever the test
    run inherited (started in the background of a script, SIGINT is ignored)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_sigint_in_process_restores_the_state(rng, python_sigint):
    """The same path in this process: a callback sends SIGINT to it after 2 epochs."""
    from skorch.callbacks import Callback

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    X = rng.normal(size=(6, 4, 20)).astype(np.float32)
    y = np.array([0, 1] * 3)
    params = dict(embedding_dim=2, n_filters=2, patch_frames=9, hidden_units=(4,))
    emb = ConvEmbedder(max_epochs=50, callbacks=[CtrlC()], random_state=0, **params)
    with pytest.raises(KeyboardInterrupt, match="interrupted after 2 of 50 epochs"):
        emb.fit(X, y)
    assert not [k for k in vars(emb) if k.endswith("_")]

    emb.set_params(on_interrupt="keep")
    with pytest.warns(UserWarning, match="interrupted after 2 of 50 epochs; keeping"):
        emb.fit(X, y)
    assert len(emb.net_.history) == 2
    assert emb.transform(X).shape == (6, 2)

    # an error in a refit leaves the previous fit, not a mixture
    before = emb.transform(X)
    with pytest.raises(ValueError, match="mel bands"):
        emb.fit([np.ones((4, 20)), np.ones((5, 20))], [0, 1])
    np.testing.assert_array_equal(emb.transform(X), before)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_callback_stopping_training_is_not_an_interrupt(rng):
    """skorch's idiom: a callback raises KeyboardInterrupt to end training (as
    EarlyStopping does); without a SIGINT that is a normal end, no error, no warning."""
    from skorch.callbacks import Callback

    class StopAt2(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    X = rng.normal(size=(6, 4, 20)).astype(np.float32)
    y = np.array([0, 1] * 3)
    emb = ConvEmbedder(
        embedding_dim=2,
        n_filters=2,
        patch_frames=9,
        hidden_units=(4,),
        max_epochs=50,
        callbacks=[StopAt2()],
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emb.fit(X, y)
    assert len(emb.net_.history) == 2


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    from sklearn_music.datasets import make_tracks

    root = tmp_path_factory.mktemp("music")
    tracks = make_tracks(6, n_genres=2, duration=1.0, sr=8000, random_state=0)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / genre).mkdir(exist_ok=True)
        sf.write(root / genre / f"{i}.wav", x, 8000)
    return root


@pytest.mark.slow
def test_sigint_cli_fit_exits_130_and_writes_no_model(music, tmp_path):
    model = tmp_path / "m.skops"
    args = [sys.executable, "-m", "sklearn_music", "fit", str(music), "--model", str(model)]
    args += ["--epochs", "100000", "--embedding-dim", "4", "--patch-frames", "16"]
    child = _Child([*args, "--sr", "8000", "-v"])
    try:
        child.wait_for(lambda line: "train_loss" in line)  # skorch's epoch table
        rc = child.interrupt_and_wait()
    finally:
        child.kill()
    assert rc == 130, "".join(child.lines)
    assert "sklearn-music: interrupted" in "".join(child.lines)
    assert list(tmp_path.iterdir()) == []  # no model, no temporary file


@pytest.mark.slow
def test_sigint_demo_stops_during_the_grid_search():
    args = [sys.executable, "-m", "sklearn_music", "demo", "--n-tracks", "24"]
    child = _Child([*args, "--duration", "3", "--epochs", "100000", "-v"])
    try:
        child.wait_for(lambda line: line.startswith("Fitting "))  # GridSearchCV verbose
        rc = child.interrupt_and_wait()
    finally:
        child.kill()
    out = "".join(child.lines)
    assert rc == 130, out
    assert "5. ConvEmbedder" not in out  # stopped in section 4
