"""The HTTP service: a real server (subprocess on 127.0.0.1) driven by a real client."""

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from sklearn_music.store import SimilarityStore

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["a/b/../c", "line\nbreak", "tab\there", "ünï cödé ♫", "100%25 %2F", "?k=1&x#y", " "]


class Server:
    """``python -m sklearn_music serve`` on a free loopback port."""

    def __init__(self, *args, command=("sklearn_music", "serve")):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", *command, *args]
        cmd += ["--host", "127.0.0.1", "--port", "0", "--log-level", "info"]
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        self.lines = []
        deadline = time.monotonic() + 120
        port = None
        while port is None:
            line = self.proc.stderr.readline()
            if not line or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the server did not start:\n" + "".join(self.lines))
            self.lines.append(line)
            m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            port = m and int(m.group(1))
        # keep reading the log so that the pipe never fills
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=60)
        while True:  # with --workers the port is bound before the workers listen
            try:
                self.client.get("/health")
                break
            except httpx.ConnectError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("no answer:\n" + "".join(self.lines)) from None
                time.sleep(0.1)

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def close(self):
        if getattr(self, "client", None) is not None:
            self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _track(tid):
    return quote(str(tid), safe="")


def _check_error(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"status", "code", "message"}
    assert (err["status"], err["code"]) == (status, code), err
    assert err["message"]
    return err["message"]


@pytest.fixture(scope="module")
def str_store(tmp_path_factory):
    rng = np.random.default_rng(0)
    ids = HOSTILE + [f"album-{i // 5}/track-{i}.ogg" for i in range(60)]
    path = tmp_path_factory.mktemp("serve") / "tracks.db"
    SimilarityStore.build(path, rng.normal(size=(len(ids), 8)), ids, n_neighbors=5)
    return path, ids


@pytest.fixture(scope="module")
def server(str_store):
    srv = Server("--store", str(str_store[0]), "--max-k", "20", "--max-history", "5")
    yield srv
    srv.close()


# --------------------------------------------------------------------------- #
# lookups
# --------------------------------------------------------------------------- #
def test_similar_matches_the_store_for_every_id_hostile_ones_included(server, str_store):
    path, ids = str_store
    store = SimilarityStore(path)
    for tid in ids:
        r = server.client.get(f"/tracks/{_track(tid)}/similar", params={"k": 3})
        assert r.status_code == 200, (tid, r.text)
        got = [(d["track_id"], d["score"]) for d in r.json()]
        want = store.similar(tid, k=3)
        assert [t for t, _ in got] == [t for t, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-6)
        assert r.headers["x-store-version"]
    # the router's path (taken when the query is not a lone k) answers the same
    tid = _track(ids[2])
    fast = server.client.get(f"/tracks/{tid}/similar?k=3")
    full = server.client.get(f"/tracks/{tid}/similar?k=3&format=json")
    assert fast.json() == full.json() and full.headers["x-store-version"]
    # the default k is 10, of which the store keeps 5
    assert len(server.client.get(f"/tracks/{_track(ids[0])}/similar").json()) == 5


def test_vector_round_trips_float32(server, str_store):
    path, ids = str_store
    store = SimilarityStore(path)
    for tid in (ids[1], ids[3], ids[-1]):
        r = server.client.get(f"/tracks/{_track(tid)}/vector")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["track_id"] == tid
        np.testing.assert_array_equal(np.float32(body["vector"]), store.vector(tid))


@pytest.mark.parametrize("suffix", ["similar", "vector"])
def test_unknown_id_is_404(server, suffix):
    msg = _check_error(
        server.client.get(f"/tracks/{_track('no/such')}/{suffix}"), 404, "unknown_track"
    )
    assert "no/such" in msg


@pytest.mark.parametrize("k", ["0", "-1", "21", "abc", "1.5", ""])
def test_bad_k_is_422(server, str_store, k):
    tid = _track(str_store[1][10])
    msg = _check_error(server.client.get(f"/tracks/{tid}/similar?k={k}"), 422, "invalid_parameter")
    assert "k=" in msg


def test_unknown_route_and_method_keep_the_error_shape(server):
    _check_error(server.client.get("/nothing/here"), 404, "not_found")
    _check_error(server.client.post("/health"), 405, "method_not_allowed")


def test_recommend_matches_the_store(server, str_store):
    path, ids = str_store
    store = SimilarityStore(path)
    history = [ids[0], ids[2], ids[20]]
    r = server.client.post("/recommend", json={"history": history, "k": 4})
    assert r.status_code == 200, r.text
    got = [(d["track_id"], d["score"]) for d in r.json()]
    want = store.recommend(history, k=4)
    assert [t for t, _ in got] == [t for t, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-6)
    assert not set(history) & {t for t, _ in got}


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"history": ["not-stored"]}, 404, "unknown_track"),
        ({"history": []}, 422, "invalid_parameter"),
        ({"history": ["a/b/../c"] * 6}, 422, "invalid_parameter"),  # --max-history 5
        ({"history": [7]}, 422, "invalid_parameter"),  # an int in a str store
        ({"history": ["a/b/../c"], "k": 0}, 422, "invalid_parameter"),
        ({"history": ["a/b/../c"], "k": True}, 422, "invalid_parameter"),
        ({"tracks": ["a/b/../c"]}, 422, "invalid_body"),
        ([1, 2], 422, "invalid_body"),
    ],
)
def test_recommend_errors(server, body, status, code):
    _check_error(server.client.post("/recommend", json=body), status, code)


def test_recommend_refuses_bad_json_and_large_bodies(server):
    r = server.client.post("/recommend", content=b"{not json", headers={"content-type": JSON})
    _check_error(r, 422, "invalid_body")
    big = json.dumps({"history": ["x" * 100] * 20000}).encode()  # > 1 MiB
    _check_error(server.client.post("/recommend", content=big), 413, "payload_too_large")


def test_upload_without_a_model_is_501(server):
    r = server.client.post("/similar", content=b"RIFF", headers={"content-type": "audio/wav"})
    _check_error(r, 501, "no_model")


def test_health_metrics_and_openapi(server, str_store):
    health = server.client.get("/health").json()
    assert health["status"] == "ok"
    assert (health["tracks"], health["dim"], health["id_type"]) == (len(str_store[1]), 8, "str")
    assert health["model"] is False

    def count(text, route, status):
        labels = f'route="{re.escape(route)}",method="GET",status="{status}"'
        pat = rf"sklearn_music_requests_total\{{{labels}\}} (\d+)"
        m = re.search(pat, text)
        return int(m.group(1)) if m else 0

    before = server.client.get("/metrics").text
    route = "/tracks/{track_id}/similar"
    for _ in range(3):
        server.client.get(f"/tracks/{_track(str_store[1][9])}/similar")
    server.client.get("/tracks/nope/similar")
    r = server.client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = r.text
    assert count(after, route, 200) == count(before, route, 200) + 3
    assert count(after, route, 404) == count(before, route, 404) + 1
    # the histogram is cumulative and its +Inf bucket equals its count
    name = "sklearn_music_request_duration_seconds"
    buckets = [
        int(v)
        for v in re.findall(
            rf'{name}_bucket\{{route="{re.escape(route)}",le="[^"]+"\}} (\d+)', after
        )
    ]
    assert buckets == sorted(buckets)
    total = re.search(rf'{name}_count\{{route="{re.escape(route)}"\}} (\d+)', after)
    assert buckets[-1] == int(total.group(1)) >= 4
    assert re.search(r"^sklearn_music_store_tracks \d+$", after, re.M)

    schema = server.client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    assert set(paths) >= {
        "/tracks/{track_id}/similar",
        "/tracks/{track_id}/vector",
        "/recommend",
        "/similar",
        "/health",
        "/metrics",
    }
    for path, operations in paths.items():  # each response is {"description": text}
        for operation in operations.values():
            for status, response in operation["responses"].items():
                assert list(response) == ["description"], (path, status, response)
                assert isinstance(response["description"], str), (path, status)
    assert "post" in paths["/similar"] and "415" in {
        str(s) for s in paths["/similar"]["post"]["responses"]
    }


JSON = "application/json"


# --------------------------------------------------------------------------- #
# a store of int ids
# --------------------------------------------------------------------------- #
def test_int_ids(tmp_path):
    rng = np.random.default_rng(1)
    ids = [-3, 0, 7, 10**12, *range(100, 120)]
    path = tmp_path / "ints.db"
    SimilarityStore.build(path, rng.normal(size=(len(ids), 4)), ids, n_neighbors=3)
    store = SimilarityStore(path)
    srv = Server("--store", str(path))
    try:
        for tid in (-3, 10**12, 7):
            got = srv.client.get(f"/tracks/{tid}/similar").json()
            assert [(d["track_id"], d["score"]) for d in got] == store.similar(tid)
            assert all(type(d["track_id"]) is int for d in got)
        assert srv.client.get("/tracks/7/vector").json()["track_id"] == 7
        for text in ("007", "abc", "7.0", "+7", " 7"):
            _check_error(srv.client.get(f"/tracks/{_track(text)}/similar"), 404, "unknown_track")
        r = srv.client.post("/recommend", json={"history": [7, 100], "k": 2})
        assert [d["track_id"] for d in r.json()] == [t for t, _ in store.recommend([7, 100], k=2)]
        r = srv.client.post("/recommend", json={"history": ["7"]})
        _check_error(r, 422, "invalid_parameter")
        assert srv.client.get("/health").json()["id_type"] == "int"
    finally:
        srv.close()


def test_user_recommendations_read_the_stored_lists(tmp_path):
    from sklearn_music.store._write import write_user_lists

    rng = np.random.default_rng(2)
    ids = [f"t{i}" for i in range(12)]
    path = tmp_path / "users.db"
    SimilarityStore.build(path, rng.normal(size=(len(ids), 4)), ids, n_neighbors=3)
    lists = [("ann/é\n", [0.9, 0.5, 0.1], ["t3", "t1", "t7"]), ("42", [0.8], ["t2"])]
    write_user_lists(path, lists, user_id_type="str")
    store = SimilarityStore(path)
    srv = Server("--store", str(path))
    try:
        for uid, _, _ in lists:
            r = srv.client.get(f"/users/{_track(uid)}/recommendations", params={"k": 2})
            assert r.status_code == 200
            got = [(d["track_id"], d["score"]) for d in r.json()]
            assert got == store.recommended(uid, k=2)
        _check_error(srv.client.get("/users/bob/recommendations"), 404, "unknown_user")
        _check_error(srv.client.get("/users/42/recommendations?k=0"), 422, "invalid_parameter")
    finally:
        srv.close()


# --------------------------------------------------------------------------- #
# search by vector (the upload endpoint's search), against brute force
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_similar_to_vector_is_exact(tmp_path, rng, metric):
    X = rng.normal(size=(300, 6))
    path = tmp_path / "s.db"
    SimilarityStore.build(path, X, list(range(300)), n_neighbors=2, metric=metric)
    q = rng.normal(size=6)
    got = SimilarityStore(path).similar_to_vector(q, k=7, batch_size=64)
    X32 = X.astype(np.float32).astype(np.float64)
    if metric == "cosine":
        s = X32 @ q / np.linalg.norm(X32, axis=1) / np.linalg.norm(q)
    else:
        s = -np.linalg.norm(X32 - q, axis=1)
    order = np.argsort(-s)[:7]
    assert [t for t, _ in got] == order.tolist()
    np.testing.assert_allclose([v for _, v in got], s[order], rtol=1e-6)  # query as float32
    with pytest.raises(ValueError, match="5 dimensions"):
        SimilarityStore(path).similar_to_vector(q[:5])
    with pytest.raises(ValueError, match="1-D"):
        SimilarityStore(path).similar_to_vector([q])


# --------------------------------------------------------------------------- #
# uploads, with a model
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def model_server(tmp_path_factory):

    from sklearn_music.persistence import save_model
    from sklearn_music.utils._test_common import tiny_pipeline

    model, tracks = tiny_pipeline(8)
    model.fit(tracks.data, tracks.genre)
    d = tmp_path_factory.mktemp("model")
    save_model(model, d / "model.skops")
    ids = [f"clip {i}/♪" for i in range(len(tracks.data))]
    SimilarityStore.build(d / "tracks.db", model[:-1].transform(tracks.data), ids, n_neighbors=3)
    srv = Server(
        "--store",
        str(d / "tracks.db"),
        "--model",
        str(d / "model.skops"),
        "--max-upload-mb",
        "0.25",
    )
    yield srv, model, d / "tracks.db", tracks.data
    srv.close()


def _wav(y, sr):
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, dtype=np.float32), sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def test_upload_is_embedded_and_searched(model_server):
    srv, model, store_path, data = model_server
    y = data[3][: 8000 // 2] * 0.5 + data[5][: 8000 // 2] * 0.5  # half a second, not stored
    r = srv.client.post(
        "/similar?k=4", content=_wav(y, 8000), headers={"content-type": "audio/wav"}
    )
    assert r.status_code == 200, r.text
    vector = model[:-1].transform([np.float32(y)])[0]
    want = SimilarityStore(store_path).similar_to_vector(vector, k=4)
    assert [d["track_id"] for d in r.json()] == [t for t, _ in want]
    np.testing.assert_allclose([d["score"] for d in r.json()], [s for _, s in want], rtol=1e-5)
    assert srv.client.get("/health").json()["model"] is True


def test_upload_errors(model_server):
    srv = model_server[0]
    wav = {"content-type": "audio/wav"}
    msg = _check_error(
        srv.client.post("/similar", content=b"<html>no audio</html>", headers=wav), 415, "not_audio"
    )
    assert "not readable audio" in msg
    _check_error(srv.client.post("/similar", content=b"", headers=wav), 415, "not_audio")
    r = srv.client.post(
        "/similar", content=_wav(np.zeros(800), 8000), headers={"content-type": "text/plain"}
    )
    _check_error(r, 415, "not_audio")
    big = _wav(np.zeros(100_000), 8000)  # 400 kB > --max-upload-mb 0.25
    _check_error(srv.client.post("/similar", content=big, headers=wav), 413, "payload_too_large")

    def chunks():  # no Content-Length: the limit is checked while reading
        for _ in range(40):
            yield b"\0" * 10_000

    _check_error(
        srv.client.post("/similar", content=chunks(), headers=wav), 413, "payload_too_large"
    )
    _check_error(
        srv.client.post("/similar?k=0", content=big, headers=wav), 422, "invalid_parameter"
    )
    # the server still answers
    assert srv.client.get("/health").status_code == 200


# --------------------------------------------------------------------------- #
# hot swap
# --------------------------------------------------------------------------- #
def _tag(path):
    st = os.stat(path)
    return f"{st.st_ino}-{st.st_mtime_ns}"


def _publish(src, live):
    """Replace live by src atomically, as a build or an add does (os.replace)."""
    tmp = live.with_name(".live.db.tmp")
    os.link(src, tmp)
    os.replace(tmp, live)


def _wait_for(predicate, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_hot_swap_during_requests_fails_and_mixes_nothing(tmp_path):
    rng = np.random.default_rng(2)
    ids = [f"t/{i}" for i in range(40)]
    versions = {}
    for name in ("a", "b"):  # same ids, different vectors: different answers
        path = tmp_path / f"{name}.db"
        SimilarityStore.build(path, rng.normal(size=(40, 8)), ids, n_neighbors=5)
        with SimilarityStore(path) as store:
            versions[_tag(path)] = {t: [list(p) for p in store.similar(t, k=5)] for t in ids}
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    live = tmp_path / "live.db"
    _publish(a, live)
    srv = Server("--store", str(live), "--check-interval-ms", "20")
    stop, results = threading.Event(), []

    def load(offset):
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            i = offset
            while not stop.is_set():
                tid = ids[i % len(ids)]
                i += 1
                r = client.get(f"/tracks/{_track(tid)}/similar", params={"k": 5})
                results.append((tid, r.status_code, r.headers.get("x-store-version"), r.text))

    threads = [threading.Thread(target=load, args=(7 * j,)) for j in range(4)]
    try:
        for t in threads:
            t.start()
        for n in range(8):
            time.sleep(0.15)
            _publish(b if n % 2 == 0 else a, live)
        _wait_for(
            lambda: srv.client.get("/health").json()["version"] == _tag(a), "the last version"
        )
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        seen = set()
        for tid, status, version, text in results:
            assert status == 200, text
            assert version in versions, version
            got = [[d["track_id"], d["score"]] for d in json.loads(text)]
            assert got == versions[version][tid], (tid, version)
            seen.add(version)
        assert seen == set(versions), "the requests did not see both versions"
        metrics = srv.client.get("/metrics").text
        swaps = int(re.search(r"^sklearn_music_store_swaps_total (\d+)$", metrics, re.M).group(1))
        assert 1 <= swaps <= 8

        # an add publishes a new file the same way: the new track is served
        with SimilarityStore(live, mode="a") as writer:
            writer.add(rng.normal(size=(1, 8)), ["new track ♫"])
        url = f"/tracks/{_track('new track ♫')}/similar"
        _wait_for(lambda: srv.client.get(url).status_code == 200, "the added track")
        assert srv.client.get("/health").json()["tracks"] == 41
    finally:
        stop.set()
        srv.close()


def test_upload_past_the_timeout_is_503_and_lookups_go_on(model_server):
    _, _, store_path, data = model_server
    model_path = store_path.parent / "model.skops"
    srv = Server("--store", str(store_path), "--model", str(model_path), "--embed-timeout", "0.001")
    try:
        wav, headers = _wav(data[0], 8000), {"content-type": "audio/wav"}
        # decoding, the mel spectrogram and the network take far more than 1 ms
        _check_error(srv.client.post("/similar", content=wav, headers=headers), 503, "timeout")
        r = srv.client.post("/similar", content=wav, headers=headers)
        assert r.status_code == 503 and r.json()["error"]["code"] in {"busy", "timeout"}
        assert srv.client.get(f"/tracks/{_track('clip 1/♪')}/similar").status_code == 200

        def idle():
            text = srv.client.get("/metrics").text
            return re.search(r"^sklearn_music_embed_in_flight 0$", text, re.M) is not None

        _wait_for(idle, "the embedding threads to end")
    finally:
        srv.close()


def test_several_workers(str_store):
    path, ids = str_store
    srv = Server("--store", str(path), "--workers", "2", command=("sklearn_music.serve",))
    try:
        store = SimilarityStore(path)
        for tid in ids[:20]:
            r = srv.client.get(f"/tracks/{_track(tid)}/similar", params={"k": 2})
            assert r.status_code == 200, r.text
            assert [d["track_id"] for d in r.json()] == [t for t, _ in store.similar(tid, k=2)]
    finally:
        srv.close()


def test_app_in_process_on_another_thread(str_store):
    """create_app in one thread, the event loop in another (as Starlette's TestClient runs)."""
    import warnings

    from sklearn_music.serve import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TestClient's notice about its httpx backend
        from starlette.testclient import TestClient

        path, ids = str_store
        with TestClient(create_app(path, max_k=3)) as client:
            r = client.get(f"/tracks/{_track(ids[5])}/similar?k=2")
            assert r.json() == [
                {"track_id": t, "score": s} for t, s in SimilarityStore(path).similar(ids[5], k=2)
            ]
            _check_error(
                client.get(f"/tracks/{_track(ids[5])}/similar?k=4"), 422, "invalid_parameter"
            )
    with pytest.raises(FileNotFoundError, match="no similarity store"):
        create_app(path.with_name("missing.db"))
    with pytest.raises(ValueError, match="max_k=0"):
        create_app(path, max_k=0)
