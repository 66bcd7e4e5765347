"""The research logs of ``bench_real.py``: what was tried, with its numbers."""

# ----------------------------------------------------------------------------------
# Research log (numbers from benchmarks/ experiments, see docs/benchmarks/real.rst)
# --------------------------------------------------------------------------------------
# Each entry: (change, P@1, P@10, mAP, what it did). Unless noted: 5 folds, the
# embedding layer of a torch prototype of the ConvEmbedder network
# (kept outside the repository: same layers, init, per-band standardisation,
# Adam lr 1e-3, weight decay 1e-4, batch 32, 96-frame patches, patch-averaged
# embeddings), seed 0. The MFCC baseline on the same folds: 0.294 / 0.289 / 0.328.
RESEARCH_LOG = [
    (
        "MFCC statistics baseline (reference)",
        "0.294",
        "0.289",
        "0.328",
        "60-d, standardised on the training folds; 57 of 502 queries have no relevant "
        "clip in their fold and are left out",
    ),
    (
        "Prototype, 10 epochs × 4 patches per clip",
        "0.333",
        "0.333",
        "0.354",
        "already above the baseline; seed 1: 0.339 / 0.323 / 0.354",
    ),
    (
        "… 5 epochs × 4 patches",
        "0.398",
        "0.320",
        "0.351",
        "P@1 noisy, P@10/mAP lower: undertrained",
    ),
    (
        "… 20 epochs × 4 patches (= ConvEmbedder's 10 × 8)",
        "0.357",
        "0.346",
        "0.373",
        "more patches seen: better",
    ),
    (
        "… 20 epochs × 8 patches",
        "0.422",
        "0.387",
        "0.410",
        "best: training length is the change that matters (160 random 3-s patches per 30-s clip)",
    ),
    (
        "Real ConvEmbedder, old defaults (10 epochs × 8 patches)",
        "0.360",
        "0.324",
        "0.348",
        "bench_real.py itself, 72 s for 5 folds",
    ),
    (
        "Real ConvEmbedder, max_epochs=20",
        "0.389",
        "0.399",
        "0.428",
        "bench_real.py itself, 123 s for 5 folds on 2 cores: adopted as the default",
    ),
    (
        "Embedding from which layer (20 × 8 model)",
        "0.407 / 0.398 / 0.422 / 0.429 / 0.389",
        "0.385 / 0.388 / 0.387 / 0.371 / 0.371",
        "0.391 / 0.407 / 0.410 / 0.399 / 0.405",
        "global pooling (192-d) / FC 256 / embedding 64 / logits / softmax: the "
        "embedding layer is as good as any",
    ),
    (
        "L2-normalise each patch embedding before averaging (20 × 8)",
        "0.434",
        "0.386",
        "0.406",
        "no change (cosine retrieval already normalises the mean)",
    ),
    (
        "Centre / standardise embeddings with training-set statistics (2 folds, 10 × 4)",
        "+0.05 / +0.03",
        "−0.01 / −0.02",
        "+0.00 / −0.01",
        "no consistent gain; not worth a fitted attribute",
    ),
    (
        "No input normalisation at all: dB / 20, no input batch norm (10 × 4)",
        "0.274",
        "0.292",
        "0.321",
        "loses to the baseline, like the issue's plain CNN "
        "(0.24 / 0.26 / 0.33): normalisation is the first thing that makes it win",
    ),
    (
        "Input batch norm only, no per-band standardisation (10 × 4)",
        "0.355",
        "0.312",
        "0.344",
        "most of the way; per-band standardisation adds ~0.02 P@10 / 0.01 mAP",
    ),
    (
        "Random gain ±0.5 (standardised units) per patch (10 × 4)",
        "0.321",
        "0.293",
        "0.336",
        "worse: the absolute level is an album cue",
    ),
    (
        "Per-clip normalisation instead of per-band standardisation (10 × 4)",
        "0.351",
        "0.280",
        "0.318",
        "worse: the clip's overall spectral balance (mastering) "
        "is an album cue the per-clip mean removes",
    ),
    (
        "Patch length 48 frames (1.5 s) × 8 patches (10 epochs)",
        "0.355",
        "0.335",
        "0.367",
        "same frames seen as 96 × 4: slightly better (more, shorter examples)",
    ),
    (
        "Patch length 192 frames (6 s) × 2 patches (10 epochs)",
        "0.348",
        "0.318",
        "0.351",
        "same frames seen as 96 × 4: no gain",
    ),
    (
        "Global pooling mean only / max only (10 × 4)",
        "0.310 / 0.333",
        "0.334 / 0.323",
        "0.357 / 0.353",
        "same as mean+max+L2 (0.333 / 0.333 / 0.354)",
    ),
    (
        "Embed the whole 30-s clip in one pass instead of averaging patches (10 × 4)",
        "0.360",
        "0.325",
        "0.349",
        "same",
    ),
    ("SpecAugment masks, ≤16 bands and ≤16 frames (10 × 4)", "0.364", "0.333", "0.359", "neutral"),
    ("dropout 0.5 instead of 0.3 (10 × 4)", "0.348", "0.319", "0.348", "neutral"),
    (
        "one-cycle LR schedule, peak 3e-3 (10 × 4)",
        "0.326",
        "0.350",
        "0.375",
        "P@10/mAP +0.02 on 5 folds but worse on the 2-fold run below; not adopted "
        "(ConvEmbedder can take skorch's LRScheduler through ``callbacks``)",
    ),
    ("mixup α=0.4 (10 × 4)", "0.333", "0.302", "0.333", "worse at this budget"),
    ("label smoothing 0.1 (10 × 4)", "0.357", "0.320", "0.348", "no gain"),
    (
        "album-balanced sampling (10 × 4)",
        "0.339",
        "0.303",
        "0.336",
        "worse: the big albums are also the most frequent queries",
    ),
    (
        "supervised-contrastive term 0.5 on the embedding, τ=0.1 (2 folds, 10 × 4)",
        "0.215",
        "0.234",
        "0.278",
        "much worse (2-fold baseline: 0.233 / 0.316 / 0.330); "
        "batches of 32 patches hold too few positives of the small albums",
    ),
    (
        "one-cycle LR schedule, peak 3e-3 (2 folds, 10 × 4)",
        "0.262",
        "0.291",
        "0.318",
        "worse than constant 1e-3 (2-fold: 0.297 / 0.323 / 0.341)",
    ),
]


FINDINGS = """\
The issue reported a plain 30-epoch CNN on random 4-s patches below this baseline
(0.24 / 0.26 / 0.33). With the ConvEmbedder network (input batch norm after a per-band
standardisation learned in ``fit``, three conv layers, mean+max+L2 global pooling,
patch-averaged embeddings) the learned embedding wins on all three metrics, and what
moves the numbers most is **how many random patches it is trained on**: 40 patches
per clip (10 epochs × 4) already beat the baseline, 80 do better and 160 (20 epochs ×
8 patches, about 25 s per fold on 2 cores) do best of what we tried. Per-band
standardisation matters (per-clip normalisation or none lose the album's spectral
balance). Regularisers that help large data sets (mixup, label smoothing,
SpecAugment-style masks, balanced sampling, a supervised-contrastive term, a one-cycle
schedule) did not help at this budget; the layer the embedding is taken from and
L2-normalising patch embeddings barely matter under cosine retrieval.
``ConvEmbedder``'s default is therefore ``max_epochs=20`` (it was 10); everything else
stayed as it was. The results table above is the mean over several seeds of that
default; the experiments below are single runs (seed 0), and from two seeds of the
same configuration their run-to-run spread is about ±0.01 on P@10 and mAP and ±0.03
on P@1 (P@1 rests on 445 queries), so differences below that are noise."""


# Transfer research log: (change, P@1, P@10, mAP, what it did). wide → dev (all 502
# dev clips) unless noted; one seed; 2026-11-26, music worktree.
TRANSFER_LOG = [
    (
        "musicnn features as musicnn.extractor computes them (float16 log-mel)",
        "–",
        "–",
        "–",
        "not usable as is: musicnn casts the mel power M to float16 before "
        "log10(10000 M + 1), and 10000 M overflows (inf) wherever M > 6.55. On a "
        "6-s supertux excerpt 1.6 % of the mel bins overflow and the tags move by up "
        "to 0.37; at 1 % of the level (no overflow) our float32 path equals "
        "musicnn.extractor to 3.5e-5 (``_musicnn_features.py --check``)",
    ),
    (
        "musicnn, which pooled layer (in-domain, 5 folds)",
        "0.393 / 0.431 / 0.342 / 0.411",
        "0.320 / 0.336 / 0.307 / 0.343",
        "0.368 / 0.368 / 0.346 / 0.375",
        "taggram / mean_pool / max_pool / penultimate, each the mean over the ten "
        "3-s patches of a clip, standardised: the penultimate layer is best on "
        "P@10 and mAP (as on the held-out collection of the issue), max pooling worst",
    ),
    (
        "mean/std of the log-mel instead of MFCC statistics (in-domain)",
        "0.231",
        "0.230",
        "0.282",
        "below MFCC statistics (0.294 / 0.289 / 0.328): the DCT and the delta "
        "spread help; in transfer it is on a par with MFCC (table above)",
    ),
]

TRANSFER_FINDINGS = """\
On albums it never heard, **musicnn is the representation to beat**. Its weights know
nothing of these soundtracks (the training collection only supplies the standardisation
statistics), yet on the 8 dev albums its mean-pooled layer reaches P@1 0.534 / P@10
0.436 / mAP 0.325 and its penultimate layer 0.468 / 0.419 / 0.332, against 0.361 / 0.331
/ 0.275 for MFCC statistics and 0.373 / 0.308 / 0.253 for the mean/std of the log-mel
(chance 0.206 / 0.206 / 0.215). ConvEmbedder from random weights (the default until
``init="auto"``) trained on the wide album labels reaches 0.393 ± 0.019 / 0.346 ± 0.016
/ 0.285 ± 0.004 over 3 seeds: above MFCC statistics, below the pretrained soundtracks-v1
(0.418 / 0.373 / 0.304) and musicnn's pooled layers. Fine-tuned from soundtracks-v1 on
the same labels (what the default ``init="auto"`` does) it is lower, 0.363 ± 0.011 /
0.323 / 0.272: the album labels of other albums pull it away from what the pre-training
knew, so for albums never heard the frozen pretrained model is the one to use. The
self-supervised ``fit(X)`` on wide from random weights, 3 seeds: 0.344 ± 0.027 / 0.329 /
0.282, no better than the supervised row (the shipped model's recipe -- no augmentation,
more pairs per track, 5 epochs -- is what lifts it to 0.418); from soundtracks-v1 (the
default ``init="auto"``) 0.374 ± 0.022 / 0.345 / 0.287, below the frozen model: more
contrastive training with the default augmentations does not add to it. The reverse
direction (dev → wide: 8 training albums, 42 test albums, 495 tracks, one clip each;
chance 0.048 / 0.048 / 0.059) is harder for every row; there the self-supervised row
(0.218 / 0.141 / 0.147) is above the supervised one (0.157 / 0.105 / 0.110: 8 album
labels teach little), at the level of MFCC statistics (0.265 / 0.141 / 0.146), and
musicnn's pooled layers lead (0.378 / 0.225 / 0.217 for max_pool, 0.378 / 0.223 / 0.223
for mean_pool).

Rows that start from soundtracks-v1 are not run in dev → wide (it was trained on the
wide audio; the frozen model's row there, 0.295 / 0.184 / 0.186, was removed for that
reason).

In-domain the picture turns around, as on the issue's held-out collection: the
supervised ConvEmbedder fine-tuned from soundtracks-v1 (0.449 / 0.404 / 0.431, 3 seeds;
the default since ``init="auto"``) is above musicnn's best layer (penultimate 0.411 /
0.343 / 0.375), and so was the supervised default before it, trained from scratch (0.374
/ 0.381 / 0.403; 0.419 / 0.388 / 0.417 when measured at commit 8206721 in the
environment of 2026-11-25: that commit's own ``bench_real.py`` and package give seed 0
0.375 / 0.371 / 0.398 in today's environment, the very scores of today's code, so the
difference came from the environment, not the code), both above MFCC statistics (0.294 /
0.289 / 0.328) and the log-mel mean/std (0.231 / 0.230 / 0.282). Which musicnn layer is
best depends on the protocol (penultimate in-domain, mean_pool in transfer); the
max-pooled layer and the 50 tag probabilities are the weakest in-domain, so a
distillation target made of tags alone carries less than the 753-d pooled features.

Caveats of these runs: the trained transfer rows (2026-11-26 10:24 UTC, idle machine)
were run after the other rows of the transfer tables, in the same environment; the
wide musicnn file was partial when the transfer tables were made (the middle clip
of every track and some more, 624 of 2088 clips), so in wide → dev the musicnn scaler
was fitted on those 624 clips, and dev → wide only needs the middle clips, which were
all there. Costs on this 2-core machine shared by about 8 jobs (load 15–27): the
log-mel cache of the wide set took 48 min wall (dev 5 min); musicnn needs 1.1 CPU-s
per 30-s clip (0.37 s decoding and mel, 0.72 s network), 38 min wall for the 502 dev
clips."""
