"""SimilarityStore against damaged, tampered and hostile files, concurrent writers
and killed writers.

Every damaged store must give either the right answer or a :class:`StoreError`
naming the file: never another exception, never a silent wrong result.
"""

import multiprocessing
import os
import shutil
import signal
import sqlite3
import struct
import time

import numpy as np
import pytest

from sklearn_music.store import SimilarityStore, StoreError
from sklearn_music.store import _format as store_format

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

N, DIM, K = 50, 8, 5


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    """A store and everything it answers, read before any damage."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("orig") / "tracks.db"
    X = rng.normal(size=(N, DIM)).astype(np.float32)
    ids = [f"track{i:02d}" for i in range(N)]
    SimilarityStore.build(path, X, ids, n_neighbors=K, algorithm="brute")
    with SimilarityStore(path) as store:
        ref = {
            "ids": list(store),
            "similar": {t: store.similar(t) for t in ids},
            "vector": {t: store.vector(t) for t in ids},
            "recommend": store.recommend(ids[:3], k=4, exhaustive=True),
        }
    return path, ref


def _copy(original, tmp_path, name="tracks.db"):
    dst = tmp_path / name
    shutil.copyfile(original[0], dst)
    return dst


def _outcome(path, ref):
    """'error' (StoreError naming the file) or 'correct'; anything else fails the test."""
    try:
        with SimilarityStore(path) as store:
            assert len(store) == N
            assert list(store) == ref["ids"]
            for t in ref["ids"]:
                assert store.similar(t) == ref["similar"][t], t
                np.testing.assert_array_equal(store.vector(t), ref["vector"][t])
            assert store.recommend(ref["ids"][:3], k=4, exhaustive=True) == ref["recommend"]
            assert "nosuchtrack" not in store
    except StoreError as exc:
        assert str(path) in str(exc) and exc.path == str(path)
        return "error"
    return "correct"


def _crc_or_zero(fn):
    def crc(*args):
        try:
            return fn(*args)
        except (TypeError, AttributeError, struct.error):
            return 0

    return crc


def _edit(path, sql, *, resign=False):
    """Run ``sql`` on the file; ``resign``: then recompute every checksum, as a
    tamperer who knows the format would (so that the other checks are tested)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql)
        if resign:
            conn.create_function("track_crc", 4, _crc_or_zero(store_format.track_crc))
            conn.create_function("list_crc", 2, _crc_or_zero(store_format.list_crc))
            cols = {r[1] for r in conn.execute("PRAGMA table_info(tracks)")}
            if "crc" in cols and "worst" in cols:
                conn.execute("UPDATE tracks SET crc = track_crc(pos, track_id, vector, worst)")
            if any(r[1] == "crc" for r in conn.execute("PRAGMA table_info(neighbors)")):
                conn.execute("UPDATE neighbors SET crc = list_crc(track_id, data)")
            if conn.execute("PRAGMA table_info(meta)").fetchall():
                meta = dict(conn.execute("SELECT key, value FROM meta"))
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'checksum'",
                    (store_format.meta_crc(meta),),
                )
    conn.close()


# --------------------------------------------------------------------------- #
# tampered meta and schema: refused on open
# --------------------------------------------------------------------------- #
META_EDITS = [
    ("DELETE FROM meta WHERE key = 'dim'", "'dim' missing"),
    ("DELETE FROM meta WHERE key = 'metric'", "'metric' missing"),
    ("UPDATE meta SET value = 'one' WHERE key = 'format_version'", "format_version='one'"),
    ("UPDATE meta SET value = '1.0' WHERE key = 'format_version'", "format_version='1.0'"),
    ("UPDATE meta SET value = '0' WHERE key = 'format_version'", "format_version='0'"),
    ("UPDATE meta SET value = '99' WHERE key = 'format_version'", "version 99; .*reads up to 2"),
    ("UPDATE meta SET value = 'other' WHERE key = 'format'", "not a similarity store"),
    ("UPDATE meta SET value = '7' WHERE key = 'dim'", "vector of track 'track00' has 32 bytes"),
    ("UPDATE meta SET value = '-8' WHERE key = 'dim'", "dim='-8'"),
    ("UPDATE meta SET value = 'manhattan' WHERE key = 'metric'", "metric='manhattan'"),
    ("UPDATE meta SET value = '5' WHERE key = 'n_tracks'", "n_tracks=5 but .* 0 to 49"),
    ("UPDATE meta SET value = '500' WHERE key = 'n_tracks'", "n_tracks=500"),
    ("UPDATE meta SET value = 'x' WHERE key = 'n_tracks'", "n_tracks='x'"),
    ("UPDATE meta SET value = '0' WHERE key = 'n_neighbors'", "n_neighbors='0'"),
    ("UPDATE meta SET value = '70000' WHERE key = 'n_neighbors'", "n_neighbors='70000'"),
    ("UPDATE meta SET value = 'float' WHERE key = 'id_type'", "id_type='float'"),
    ("UPDATE meta SET value = 'int' WHERE key = 'id_type'", "damaged track id|not integers"),
    ("DROP TABLE neighbors", "table 'neighbors' has columns"),
    ("ALTER TABLE tracks DROP COLUMN worst", "table 'tracks' has columns"),
    ("DROP TABLE meta", "no meta table"),
    ("DELETE FROM tracks WHERE pos = 49", "n_tracks=50 but .* 0 to 48"),
]


@pytest.mark.parametrize("sql, match", META_EDITS, ids=[m for _, m in META_EDITS])
def test_tampered_meta_and_schema_refused(original, tmp_path, sql, match):
    """Each edit, with the checksums recomputed, is caught by a check of its own."""
    path = _copy(original, tmp_path)
    _edit(path, sql, resign=True)
    with pytest.raises(StoreError, match=match) as info:
        store = SimilarityStore(path)
        # a few tampered values (id_type) are caught by the first rows read
        list(store)
        [store.similar(t) for t in original[1]["ids"]]
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- #
# damaged rows: caught when read
# --------------------------------------------------------------------------- #
ROW_EDITS = [
    ("UPDATE tracks SET vector = x'0000' WHERE track_id = 'track07'", "track07.*2 bytes"),
    ("UPDATE tracks SET vector = 'text' WHERE track_id = 'track07'", "track07.*has a str"),
    (
        "UPDATE tracks SET vector = CAST(x'0000c07f' || substr(vector, 5) AS BLOB) "
        "WHERE track_id = 'track07'",
        "track07.*non-finite",
    ),
    ("UPDATE tracks SET vector = zeroblob(32) WHERE track_id = 'track07'", "track07.*zero"),
    ("UPDATE neighbors SET data = x'05' WHERE track_id = 'track07'", "track07.*too short"),
    ("UPDATE neighbors SET data = x'ffff00' WHERE track_id = 'track07'", "track07.*cannot hold"),
    (
        "UPDATE neighbors SET data = CAST(substr(data, 1, 22) || x'fffe' || substr(data, 25) "
        "AS BLOB) WHERE track_id = 'track07'",
        "track07.*not UTF-8",
    ),
    (
        "UPDATE neighbors SET data = CAST(substr(data, 1, length(data) - 8) AS BLOB) "
        "WHERE track_id = 'track07'",
        "track07.*damaged",
    ),
    (
        "UPDATE neighbors SET data = CAST(x'0100' || x'0000803f' || 'track07' AS BLOB) "
        "WHERE track_id = 'track07'",
        "track07.*repeated",
    ),
    (
        "UPDATE neighbors SET data = CAST(x'0200' || x'0000003f0000803f' || 'track01' || x'00' "
        "|| 'track02' AS BLOB) WHERE track_id = 'track07'",
        "track07.*best first",
    ),
    ("UPDATE neighbors SET data = 42 WHERE track_id = 'track07'", "track07.*a int"),
    ("DELETE FROM neighbors WHERE track_id = 'track07'", "track07.*in the tracks table"),
    ("UPDATE tracks SET track_id = 'zz' WHERE track_id = 'track07'", "in the neighbors table"),
    ("UPDATE tracks SET pos = 1000 WHERE track_id = 'track07'", "positions 0 to 1000"),
    ("UPDATE tracks SET worst = 'bad' WHERE track_id = 'track07'", "track07.*worst"),
]


@pytest.mark.parametrize("resign", [True, False], ids=["checksums-redone", "plain-edit"])
@pytest.mark.parametrize("sql, match", ROW_EDITS, ids=[m for _, m in ROW_EDITS])
def test_damaged_row_raises_store_error(original, tmp_path, sql, match, resign):
    path = _copy(original, tmp_path)
    _edit(path, sql, resign=resign)
    if not resign:  # the checksum or the structure check, whichever reads it first
        match = f"{match}|checksum"
        assert _outcome(path, original[1]) == "error"
    with pytest.raises(StoreError, match=match):
        with SimilarityStore(path, mode="a") as store:
            for t in original[1]["ids"]:
                store.similar(t)
                store.vector(t)
            list(store)
            store.add(np.ones((1, DIM)), ["new"])  # scans every row and its worst score


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE meta SET value = 'euclidean' WHERE key = 'metric'",
        "UPDATE meta SET value = '4' WHERE key = 'n_neighbors'",
        "UPDATE meta SET value = '2000-01-01' WHERE key = 'created'",
        "DELETE FROM meta WHERE key = 'checksum'",
    ],
)
def test_edited_meta_fails_its_checksum(original, tmp_path, sql):
    """Edits that leave valid values (cosine scored as euclidean...) are caught too."""
    path = _copy(original, tmp_path)
    _edit(path, sql)
    with pytest.raises(StoreError, match="meta values do not match their checksum"):
        SimilarityStore(path)


def _to_version_1(path):
    """Rewrite a store in format version 1 (sklearn_music 0.1: no checksums)."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE tracks DROP COLUMN crc")
        conn.execute("ALTER TABLE neighbors DROP COLUMN crc")
        conn.execute("DELETE FROM meta WHERE key = 'checksum'")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'format_version'")
    conn.execute("VACUUM")
    conn.close()


def test_version_1_store_reads_adds_and_is_checked(original, tmp_path, rng):
    path = _copy(original, tmp_path)
    _to_version_1(path)
    assert _outcome(path, original[1]) == "correct"
    with SimilarityStore(path, mode="a") as store:
        store.add(rng.normal(size=(2, DIM)), ["n1", "n2"])
        assert len(store) == N + 2 and "n2" in store
    with sqlite3.connect(path) as conn:  # an add keeps the file's version
        assert conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone() == (
            "1",
        )
    _edit(path, "UPDATE meta SET value = 'manhattan' WHERE key = 'metric'")
    with pytest.raises(StoreError, match="metric='manhattan'"):
        SimilarityStore(path)


def test_damaged_store_refuses_add_and_keeps_file(original, tmp_path):
    path = _copy(original, tmp_path)
    _edit(path, "UPDATE tracks SET vector = x'00' WHERE track_id = 'track30'")
    before = path.read_bytes()
    with SimilarityStore(path, mode="a") as store:
        with pytest.raises(StoreError, match="track30"):
            store.add(np.ones((2, DIM)), ["n1", "n2"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.db", "tracks.db.lock"]


# --------------------------------------------------------------------------- #
# not a store at all, truncated files, flipped bytes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "not an SQLite file"),
        (b"not a database" * 100, "not a similarity store: not an SQLite file"),
        (b"SQLite format 3\0" + b"\xff" * 200, "damaged SQLite header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(5000), "not an SQLite file"),
    ],
    ids=["empty", "text", "bad-header", "png"],
)
def test_not_a_store(tmp_path, content, match):
    path = tmp_path / "x.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=match) as info:
        SimilarityStore(path)
    assert info.value.path == str(path)


def test_other_sqlite_database_refused(tmp_path):
    path = tmp_path / "other.db"
    _edit(path, "CREATE TABLE t(x)")
    with pytest.raises(StoreError, match="other.db.*no meta table"):
        SimilarityStore(path)
    _edit(path, "CREATE TABLE meta(key TEXT, value TEXT)")
    with pytest.raises(StoreError, match="meta format is None"):
        SimilarityStore(path)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
def test_truncated_store(original, tmp_path, fraction):
    path = _copy(original, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(StoreError, match="truncated|not an SQLite file"):
        SimilarityStore(path)


def test_flipped_bytes_give_right_answer_or_store_error(original, tmp_path):
    """Flip bytes all over the file (every page, header included): each copy must
    answer exactly as the original or raise StoreError."""
    data = original[0].read_bytes()
    rng = np.random.default_rng(1)
    positions = sorted(set(rng.integers(0, len(data), size=150).tolist()) | {0, 16, 28, 100})
    outcomes = {"error": 0, "correct": 0}
    for pos in positions:
        damaged = bytearray(data)
        damaged[pos] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"flip{pos}.db"
        path.write_bytes(bytes(damaged))
        try:
            outcomes[_outcome(path, original[1])] += 1
        except AssertionError as exc:
            raise AssertionError(f"byte {pos} flipped: silent wrong result: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"byte {pos} flipped: {exc!r}") from exc
        path.unlink()
    assert outcomes["error"] > 0 and outcomes["correct"] > 0, outcomes


@pytest.mark.parametrize("fill", [0x00, 0xFF, "random"])
def test_overwritten_pages(original, tmp_path, fill):
    """Whole pages overwritten: SQLite's own reports (malformed pages) come back as
    StoreError naming the file too."""
    data = original[0].read_bytes()
    page = int.from_bytes(data[16:18], "big")
    rng = np.random.default_rng(2)
    outcomes = []
    for i in range(1, len(data) // page):
        damaged = bytearray(data)
        junk = rng.bytes(page) if fill == "random" else bytes([fill]) * page
        damaged[i * page : (i + 1) * page] = junk
        path = tmp_path / f"page{i}.db"
        path.write_bytes(bytes(damaged))
        outcomes.append(_outcome(path, original[1]))
    assert "error" in outcomes


def test_sqlite_malformed_report_names_the_file(original, tmp_path):
    data = bytearray(original[0].read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page : page + 8] = b"\x0d\xff\xff\xff\xff\xff\xff\xff"  # page 2's b-tree header
    path = tmp_path / "malformed.db"
    path.write_bytes(bytes(data))
    with pytest.raises(
        StoreError, match=r"damaged file \(database disk image is malformed\)"
    ) as info:
        with SimilarityStore(path) as store:
            list(store)
            [store.similar(t) for t in original[1]["ids"]]
    assert info.value.path == str(path)


# --------------------------------------------------------------------------- #
# symbolic links: writes go to the file the link names
# --------------------------------------------------------------------------- #
def test_write_through_symlink_updates_target(tmp_path, rng):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "tracks.db"
    link = tmp_path / "link.db"
    X = rng.normal(size=(10, 4))
    SimilarityStore.build(real, X, list(range(10)), n_neighbors=3)
    link.symlink_to(real)
    with SimilarityStore(link, mode="a") as store:
        store.add(rng.normal(size=(2, 4)), [10, 11])
        assert len(store) == 12
    assert link.is_symlink() and os.readlink(link) == str(real)
    with SimilarityStore(real) as store:
        assert len(store) == 12 and 11 in store
    SimilarityStore.build(link, X[:5], list(range(5)), n_neighbors=3)
    assert link.is_symlink() and len(SimilarityStore(real)) == 5
    # no temporary or lock file beside the link: they belong beside the real file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.db", "real"]


# --------------------------------------------------------------------------- #
# concurrent writers and a writer killed mid-add
# --------------------------------------------------------------------------- #
def _fork():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs the fork start method")
    return multiprocessing.get_context("fork")


def _adder(path, X, ids, go, errors):
    try:
        go.wait(60)
        with SimilarityStore(path, mode="a") as store:
            for lo in range(0, len(ids), 3):
                store.add(X[lo : lo + 3], ids[lo : lo + 3])
    except BaseException as exc:  # report to the parent
        errors.put(repr(exc))
        raise


def test_concurrent_writers_lose_no_row(tmp_path, rng):
    ctx = _fork()
    path = tmp_path / "tracks.db"
    n0, n_proc, per = 40, 4, 9
    X = rng.normal(size=(n0 + n_proc * per, 6)).astype(np.float32)
    ids = [f"t{i:03d}" for i in range(len(X))]
    SimilarityStore.build(path, X[:n0], ids[:n0], n_neighbors=4, algorithm="brute")
    go, errors = ctx.Event(), ctx.Queue()
    procs = []
    for p in range(n_proc):
        sl = slice(n0 + p * per, n0 + (p + 1) * per)
        procs.append(ctx.Process(target=_adder, args=(path, X[sl], ids[sl], go, errors)))
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
    failures = [errors.get() for _ in range(errors.qsize())]
    assert [p.exitcode for p in procs] == [0] * n_proc, failures
    full = tmp_path / "full.db"
    SimilarityStore.build(full, X, ids, n_neighbors=4, algorithm="brute")
    with SimilarityStore(path) as store, SimilarityStore(full) as ref:
        assert len(store) == len(ids) and sorted(store) == ids
        for t in ids:  # every list as a rebuild gives it, whatever the order of the adds
            assert [u for u, _ in store.similar(t)] == [u for u, _ in ref.similar(t)], t
            np.testing.assert_array_equal(store.vector(t), ref.vector(t))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _killed_adder(path, X, ids, writing):
    """Add, but stop for good once the new rows are in the private copy."""
    original = store_format.insert_tracks

    def slow(*args, **kwargs):
        original(*args, **kwargs)
        writing.set()
        time.sleep(600)

    store_format.insert_tracks = slow
    with SimilarityStore(path, mode="a") as store:
        store.add(X, ids)


@pytest.mark.parametrize("when", ["in-transaction", "timed"])
def test_sigkill_mid_add_leaves_old_store(tmp_path, rng, when):
    ctx = _fork()
    path = tmp_path / "tracks.db"
    X = rng.normal(size=(2300, 16)).astype(np.float32)
    SimilarityStore.build(path, X[:300], list(range(300)), n_neighbors=5, algorithm="brute")
    before = path.read_bytes()
    writing = ctx.Event()
    if when == "in-transaction":
        target, args = _killed_adder, (path, X[300:], list(range(300, 2300)), writing)
    else:
        target, args = _adder, (path, X[300:], list(range(300, 2300)), writing, ctx.Queue())
        writing.set()
    child = ctx.Process(target=target, args=args)
    child.start()
    try:
        if when == "in-transaction":
            assert writing.wait(60), "the add never reached its write"
        else:  # kill once a private copy exists, wherever the add is
            deadline = time.monotonic() + 60
            while not any(p.suffix == ".tmp" for p in tmp_path.iterdir()):
                assert time.monotonic() < deadline and child.is_alive()
                time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.join(60)
    assert child.exitcode == -signal.SIGKILL
    if when == "in-transaction":
        assert path.read_bytes() == before  # the published file was never touched
    with SimilarityStore(path, mode="a") as store:
        n = len(store)
        assert n in range(300, 2300, 3) or n == 300  # the old store or a whole published add
        assert _outcome_ok(store)
        store.add(X[:1] + 1.0, [5000])  # the next writer is not blocked by the dead one
        assert len(store) == n + 1
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _outcome_ok(store):
    ids = list(store)
    return all(len(store.similar(t)) == min(5, len(ids) - 1) for t in ids[:50])
