"""Speed of ConvEmbedder: inference throughput and training time per epoch.

Run ``.venv/bin/python benchmarks/bench_embed.py`` (``--quick`` for a smoke run).
The default model (``ConvEmbedder()`` defaults, 128 mel bands, 96-frame patches) is
timed on synthetic log-mel spectrograms of 30-s tracks (sr 16 kHz, hop 512 → 938
frames), on one torch thread, and compared side by side with references run in the
same process:

* inference: ``ConvEmbedder.transform`` (strided patch cutting, the module run directly,
  averaging) against the bare torch module on the same patches already stacked in one
  tensor, and against computing the log-mel spectrograms themselves with librosa;
* training: skorch's epoch (random patch drawing, batching, callbacks) against a
  hand-written torch loop over the same number of patches.

"Hours of audio per CPU second" divides the audio duration by the process CPU time
(``time.process_time``), so it does not depend on how busy the machine is.

The table is printed in reStructuredText and written to
``docs/benchmarks/embed.rst``.
"""

import argparse
import datetime
import os
import time
from pathlib import Path

import numpy as np
from _common import cpu_name

SR, HOP, N_MELS, TRACK_SECONDS = 16000, 512, 128, 30.0
N_FRAMES = int(TRACK_SECONDS * SR / HOP) + 1


def _timed(fn, repeat):
    """Best (wall, cpu) seconds over ``repeat`` runs of ``fn``."""
    best = (np.inf, np.inf)
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small, fast smoke run")
    parser.add_argument(
        "--tracks",
        type=int,
        default=None,
        help="number of 30-s tracks (default 64, 8 with --quick)",
    )
    parser.add_argument(
        "--out", default="docs/benchmarks/embed.rst", help="where to write the RST table"
    )
    args = parser.parse_args(argv)

    import librosa
    import torch

    from sklearn_music import ConvEmbedder
    from sklearn_music._patches import _crop, _fixed_offsets

    torch.set_num_threads(1)
    n_tracks = args.tracks or (8 if args.quick else 64)
    epochs = 2 if args.quick else 3
    repeat = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    X = rng.normal(-40.0, 10.0, size=(n_tracks, N_MELS, N_FRAMES)).astype(np.float32)
    y = np.arange(n_tracks) % 4
    audio_hours = n_tracks * TRACK_SECONDS / 3600.0

    est = ConvEmbedder(max_epochs=epochs, random_state=0, n_jobs=1)
    w0 = time.perf_counter()
    est.fit(X, y)
    fit_wall = time.perf_counter() - w0
    epoch_s = float(np.median(est.net_.history[:, "dur"]))
    n_patches = n_tracks * est.patches_per_track

    # ---- training reference: a plain torch loop over as many patches ----------
    module = est.net_.module_
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    patches = torch.from_numpy(
        np.stack([X[i % n_tracks][:, : est.patch_frames] for i in range(n_patches)])
    )
    targets = torch.as_tensor(y[np.arange(n_patches) % n_tracks])

    def torch_epoch():
        module.train()
        for s in range(0, n_patches, est.batch_size):
            opt.zero_grad()
            out = module(patches[s : s + est.batch_size])
            loss = criterion(out[1], targets[s : s + est.batch_size])
            loss.backward()
            opt.step()

    ref_epoch_s, _ = _timed(torch_epoch, repeat)

    # ---- inference ------------------------------------------------------------
    hop = est.patch_hop or est.patch_frames // 2
    wall, cpu = _timed(lambda: est.transform(X), repeat)
    norm = (X - est.mean_[None, :, None]) / est.scale_[None, :, None]
    stacked = torch.from_numpy(
        np.stack(
            [
                _crop(spec, o, est.patch_frames, "wrap")
                for spec in norm
                for o in _fixed_offsets(N_FRAMES, est.patch_frames, hop)
            ]
        )
    )
    module.eval()

    def bare_forward():
        with torch.no_grad():
            for s in range(0, len(stacked), est.batch_size):
                module(stacked[s : s + est.batch_size])

    ref_wall, ref_cpu = _timed(bare_forward, repeat)
    audio = rng.normal(0, 0.1, size=(n_tracks, int(TRACK_SECONDS * SR))).astype(np.float32)

    def logmel():
        S = librosa.feature.melspectrogram(
            y=audio, sr=SR, n_fft=1024, hop_length=HOP, n_mels=N_MELS
        )
        librosa.power_to_db(S)

    mel_wall, mel_cpu = _timed(logmel, repeat)

    rows = [
        ("ConvEmbedder.transform", f"{audio_hours / cpu:.2f}", f"{audio_hours / wall:.2f}", "1.00"),
        (
            "bare torch module on pre-cut patches",
            f"{audio_hours / ref_cpu:.2f}",
            f"{audio_hours / ref_wall:.2f}",
            f"{cpu / ref_cpu:.2f}",
        ),
        (
            "log-mel front end (librosa)",
            f"{audio_hours / mel_cpu:.2f}",
            f"{audio_hours / mel_wall:.2f}",
            f"{cpu / mel_cpu:.2f}",
        ),
    ]
    train_rows = [
        ("ConvEmbedder.fit (skorch)", f"{epoch_s:.2f}", f"{n_patches / epoch_s:.0f}", "1.00"),
        (
            "hand-written torch loop",
            f"{ref_epoch_s:.2f}",
            f"{n_patches / ref_epoch_s:.0f}",
            f"{epoch_s / ref_epoch_s:.2f}",
        ),
    ]
    n_params = sum(p.numel() for p in module.parameters())
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "ConvEmbedder speed",
        "==================",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, 1 torch thread. Date: {date}."
        + (" Quick run." if args.quick else ""),
        "",
        f"Default model: {n_params:,} parameters, {N_MELS} mel bands, patches of "
        f"{est.patch_frames} frames (hop {hop}), {est.n_filters} filters x "
        f"{est.n_conv} conv layers, embedding {est.embedding_dim}. Data: {n_tracks} "
        f"synthetic 30-s tracks ({audio_hours * 60:.0f} min of audio); best of "
        f"{repeat} runs. Produced by ``benchmarks/bench_embed.py``.",
        "",
        ".. list-table:: Inference (hours of audio embedded per second)",
        "   :header-rows: 1",
        "",
        "   * - run",
        "     - h audio / CPU s",
        "     - h audio / wall s",
        "     - CPU time of transform / this run",
    ]
    for r in rows:
        lines += [f"   * - {r[0]}"] + [f"     - {v}" for v in r[1:]]
    lines += [
        "",
        f".. list-table:: Training ({n_patches} patches per epoch, batch {est.batch_size})",
        "   :header-rows: 1",
        "",
        "   * - run",
        "     - s / epoch",
        "     - patches / s",
        "     - time of skorch epoch / this run",
    ]
    for r in train_rows:
        lines += [f"   * - {r[0]}"] + [f"     - {v}" for v in r[1:]]
    lines += [
        "",
        f"Whole ``fit`` ({epochs} epochs, incl. normalisation): {fit_wall:.1f} s wall.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".rst.tmp")
    tmp.write_text(text)
    tmp.replace(out)


if __name__ == "__main__":
    main()
