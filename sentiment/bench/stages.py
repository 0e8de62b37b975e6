"""The benchmark's stages: each returns its rows (`measure.Row`)."""
from __future__ import annotations

import argparse
import bz2
import copy
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data.corpus import tokenize_corpus
from ..data.files import load_reviews
from ..data.preprocessing import tokenize_review
from ..data.sets import split_indices
from ..explain.playground import describe_cell
from ..explain.review import default_layer, explain, parse_layer
from ..model.network import ModelConfig, SentimentNet, pick_device
from ..model.predictor import load_predictor
from ..model.scoring import held_out
from ..model.word_vectors import export
from ..train.events import Evaluated
from ..train.loop import train
from ..train.presets import PRESETS
from ..train.steps import length_bucketed_batches, train_step
from ..ui.lab import Checkpoints
from ..units.passages import find_passages
from .measure import ChildrenPeak, PeakMemory, Row, alternating_times, times
from .quality import bench_curve, bench_quality
from .reference import ReferenceNet, ReferenceTrainer, reference_fit, reference_preprocess

ROOT = Path(__file__).resolve().parents[2]


def bench_prep(args: argparse.Namespace) -> list[Row]:
    """Reading, cleaning, tokenizing, the vocabulary and the encoded splits, ours and the reference's in turns."""
    limit = args.reviews or None
    n = len(load_reviews(args.review_file, limit)[0])

    def ours(cache: str) -> None:
        os.environ["SENTIMENT_CACHE_DIR"] = cache
        corpus = tokenize_corpus(args.review_file, limit=limit)
        splits = split_indices(len(corpus))
        vocab = corpus.build_vocab(splits.train)
        for rows in (splits.train, splits.val, splits.test):
            corpus.encode(vocab, rows, 200)

    def ours_first() -> None:
        with tempfile.TemporaryDirectory() as cache:
            ours(cache)

    reference, first = alternating_times([lambda: reference_preprocess(args.review_file, limit), ours_first], args.repeats)
    with tempfile.TemporaryDirectory() as cache:
        ours(cache)
        cached = times(lambda: ours(cache), args.repeats, warmup=0)
    speed = {name: n / float(np.median(t)) for name, t in (("ref", reference), ("first", first), ("cached", cached))}
    return [
        Row(stage="prep", name=f"preprocessing, first run ({n:,} reviews)", value=speed["first"], unit="reviews/s",
            reference=speed["ref"], target="≥ 4×", met=speed["first"] >= 4 * speed["ref"]),
        Row(stage="prep", name="preprocessing, rerun (token cache)", value=speed["cached"], unit="reviews/s",
            reference=speed["ref"], target="≥ 50×", met=speed["cached"] >= 50 * speed["ref"]),
    ]


def bench_train(args: argparse.Namespace) -> list[Row]:
    """Training steps at the reference size, ours (length-bucketed, right-padded batches) and the reference's
    (every review left-padded to 200, a hidden state carried across batches), one step each in turn."""
    device = pick_device(args.device)
    corpus = tokenize_corpus(args.review_file)
    splits = split_indices(len(corpus))
    vocab = corpus.build_vocab(splits.train)
    reviews = corpus.encode(vocab, splits.train, 200)
    rng = np.random.default_rng(0)

    # Ours: the timed batches spread over the length range, so that their mix is typical.
    batches = length_bucketed_batches(reviews.lengths, args.batch, rng)
    batches = sorted((b for b in batches if len(b) == args.batch), key=lambda b: reviews.lengths[b].mean())
    picked = [batches[int((j + 0.5) * len(batches) / args.train_steps)] for j in range(args.train_steps)]
    torch.manual_seed(0)
    sizes = dict(embedding_dim=args.embedding, hidden_size=args.hidden, num_layers=args.layers)
    model = SentimentNet(ModelConfig(vocab_size=len(vocab), dropout=0.5, **sizes)).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    ours_batches = iter([reviews.batch(rows) for rows in [picked[0], *picked]])  # a warm-up step, then the timed ones

    features = np.zeros((len(reviews), 200), dtype=np.int64)
    for i in range(len(reviews)):
        review = reviews.review(i)
        if len(review):
            features[i, -len(review):] = review
    reference = ReferenceTrainer(ReferenceNet(len(vocab), args.embedding, args.hidden, args.layers).to(device).train(),
                                 args.batch)
    order = rng.permutation(len(reviews))
    reference_batches = (order[j * args.batch : (j + 1) * args.batch] for j in range(args.train_steps + 1))

    def reference_step() -> None:
        rows = next(reference_batches)
        reference.step(torch.from_numpy(features[rows]).to(device), torch.from_numpy(reviews.labels[rows]).to(device))

    def ours_step() -> None:
        ids, lengths, labels = next(ours_batches)
        train_step(model, optimizer, ids, lengths, labels, clip=5.0)

    ours_step(), reference_step()  # warm-up
    ours, theirs = alternating_times([ours_step, reference_step], args.train_steps)
    ours_speed, reference_speed = args.batch / np.mean(ours), args.batch / np.mean(theirs)
    what = f"training, embedding {args.embedding}, {args.layers} × {args.hidden}, batch {args.batch}"
    return [Row(stage="train", name=what, value=ours_speed, unit="reviews/s", reference=reference_speed, target="≥ 2×",
                met=ours_speed >= 2 * reference_speed)]


def _long_review(args: argparse.Namespace) -> str:
    """A real review of the sample that fills the model's 200 tokens."""
    texts = load_reviews(args.review_file, 3000)[0]
    return next(t for t in texts if len(tokenize_review(t, max_tokens=200)) >= 200)


def _inspection_json(predictor, text: str, attribution: str = "when read") -> None:
    """What the Predict tab computes for a review: the explanation and its five figures, serialized to JSON as
    Gradio serializes them before sending them to the browser."""
    for figure in explain(predictor, text, attribution=attribution).figures().values():
        figure.to_json()


def bench_inspect(args: argparse.Namespace) -> list[Row]:
    """The Predict tab's work for a 200-token review, from its text to the figures' JSON: the shipped checkpoint
    (budget: p95 ≤ 50 ms) and a model of the reference size (embedding 400, 2 × 512; random weights, which cost the
    same as trained ones)."""
    predictor = load_predictor(args.checkpoint, args.device)
    text = _long_review(args)
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(predictor.vocab), embedding_dim=args.embedding, hidden_size=args.hidden,
                         num_layers=args.layers)
    large = copy.copy(predictor)
    large.model = SentimentNet(config).to(predictor.device).eval()
    name, size = args.checkpoint.name, f"{args.embedding}/{args.layers}×{args.hidden} model"
    samples = 40 * args.repeats
    shipped, final, reference_size = (times(lambda p=p, a=a: _inspection_json(p, text, a), n, warmup=2) for p, a, n in (
        (predictor, "when read", samples), (predictor, "on the final prediction", samples // 4),
        (large, "when read", samples // 4)))
    with torch.inference_mode():
        encoded = predictor.encode([text])
        forward = times(lambda: predictor.predict_encoded(encoded), samples, warmup=2)
    ms = lambda seconds, q: float(np.percentile(seconds, q)) * 1e3  # noqa: E731
    return [
        Row(stage="inspect", name=f"{name}: prediction alone, median", value=ms(forward, 50), unit="ms"),
        Row(stage="inspect", name=f"{name}: whole inspection from the text, figures' JSON included, p95",
            value=ms(shipped, 95), unit="ms", target="≤ 50 ms", met=ms(shipped, 95) <= 50),
        Row(stage="inspect", name=f"{name}: the same, token effects on the final prediction, p95", value=ms(final, 95),
            unit="ms"),
        Row(stage="inspect", name=f"{size}: whole inspection, p95", value=ms(reference_size, 95), unit="ms"),
        _playground_row(args.repeats),
    ]


# Requests at the playground's bounds, each the most of one resource: weights (and the memory traffic of reading
# them at every step), sequential steps, stacked layers.
COSTLIEST_PLAYGROUND_REQUESTS = [("lstm", 1024, 1024, 2, 1, 119), ("lstm", 350, 350, 1, 1, 2000),
                                 ("lstm", 512, 512, 8, 1, 110)]


def _playground_row(repeats: int) -> Row:
    """The slowest of the costliest requests the playground allows, p95: each request builds its module anew."""
    p95 = max(float(np.percentile(times(lambda r=request: describe_cell(*r), 3 * repeats), 95))
              for request in COSTLIEST_PLAYGROUND_REQUESTS) * 1e3
    return Row(stage="inspect", name="playground: the costliest request its bounds allow, p95", value=p95, unit="ms",
               target="≤ 500 ms", met=p95 <= 500)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_serve(args: argparse.Namespace) -> list[Row]:
    """`python app.py` as a person starts it: seconds until the first page is served, then the /predict round trip
    of a 200-token review through gradio_client, p95. Then the app as a public demo (a Space): its peak memory while
    a training run at every public cap trains and 8 users predict."""
    text = _long_review(args)
    with _app() as (url, _):
        client = _client(url)
        round_trips = times(lambda: client.predict(text, "default.pt", api_name="/predict"), 20 * args.repeats, warmup=3)
        first_page = _app.first_page
    with _app({"SPACE_ID": "bench/public-demo", "SENTIMENT_MAX_RUN_SECONDS": str(args.public_seconds)}) as (url, pid):
        answers = _public_load(url, text)
        peak = _status(pid, "VmHWM")  # the kernel's high-water mark of the app's resident memory
    p95 = float(np.percentile(round_trips, 95)) * 1e3
    return [
        Row(stage="serve", name="python app.py: first page served after", value=first_page, unit="s", target="≤ 10 s",
            met=first_page <= 10),
        Row(stage="serve", name="/predict round trip through gradio_client, 200-token review, p95", value=p95,
            unit="ms", target="≤ 300 ms", met=p95 <= 300),
        Row(stage="serve",
            name=f"public demo: peak memory, a capped training run and 8 users predicting ({answers:,} answers)",
            value=peak, unit="MB", target="≤ 4,096", met=peak <= 4096),
    ]


def _client(url: str):
    from gradio_client import Client  # gradio's client only: the package never imports gradio itself

    return Client(url, verbose=False)


class _app:
    """`python app.py` on a free port, its environment extended by `env`: (url, pid) inside the block."""

    first_page = 0.0

    def __init__(self, env: dict | None = None) -> None:
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}

    def __enter__(self) -> tuple[str, int]:
        port = _free_port()
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT,
                                        env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}/"
        _app.first_page = _wait_for_page(url, self.process, started)
        return url, self.process.pid

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(30)


def _status(pid: int, name: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith(name + ":")).split()[1]) / 1024


def _public_load(url: str, text: str, users: int = 8) -> int:
    """The reference preset's training run (beyond the public caps, which lower it) and `users` clients predicting
    until it ends; returns how many predictions were answered."""
    from concurrent.futures import ThreadPoolExecutor

    client = _client(url)
    values = client.predict("reference", api_name="/preset")[:-2]  # every hyper-parameter; then the limit and a note
    job = client.submit("bundled", None, None, 0, "bench-public", "", *values, api_name="/train")  # no upload, no vectors
    answered = []

    def user() -> None:
        own = _client(url)
        while not job.done():
            own.predict(text, "default.pt", api_name="/predict")
            answered.append(1)

    with ThreadPoolExecutor(users) as pool:
        for _ in range(users):
            pool.submit(user)
    saved = re.search(r"Saved as `([^`]+)`", str(job.result()))
    if saved:
        (ROOT / "checkpoints" / saved.group(1)).unlink(missing_ok=True)
    return len(answered)


def _wait_for_page(url: str, app: subprocess.Popen, started: float, timeout: float = 120) -> float:
    """Seconds from `started` until `url` answers 200; the app's own error if it exits first."""
    while time.perf_counter() - started < timeout:
        if app.poll() is not None:
            raise RuntimeError(f"app.py exited with {app.returncode}: {app.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"app.py served no page within {timeout:.0f} s")


def bench_scale(args: argparse.Namespace) -> list[Row]:
    """The full data set's path at `--scale-reviews` reviews: the bundled sample repeated into one plain fastText
    file, preprocessed (tokenize in workers into the memory-mapped cache, vocabulary, encode) first and cached."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "repeated.ft.txt"
        with bz2.open(args.review_file, "rb") as f:
            sample = f.read().splitlines(keepends=True)
        with open(data, "wb") as f:
            for start in range(0, args.scale_reviews, len(sample)):
                f.write(b"".join(sample[: args.scale_reviews - start]))
        os.environ["SENTIMENT_CACHE_DIR"] = str(Path(folder) / "cache")

        def preprocess() -> int:
            corpus = tokenize_corpus(data)
            splits = split_indices(len(corpus))
            vocab = corpus.build_vocab(splits.train)
            for rows in (splits.train, splits.val, splits.test):
                corpus.encode(vocab, rows, 200).batch(np.arange(min(400, len(rows))))  # reads the memory map
            return len(corpus)

        with PeakMemory(anon=True) as first_memory, ChildrenPeak() as workers:
            first = times(preprocess, 1, warmup=0)[0]
        n = preprocess()
        cached = float(np.median(times(preprocess, args.repeats, warmup=0)))
    return [
        Row(stage="scale", name=f"preprocessing {n:,} reviews, first run", value=n / first, unit="reviews/s"),
        Row(stage="scale", name=f"preprocessing {n:,} reviews, rerun from the memory-mapped cache", value=n / cached,
            unit="reviews/s"),
        Row(stage="scale", name="peak memory of the main process, its own (memory-mapped pages aside)",
            value=first_memory.peak_anon, unit="MB", target="< 2,000", met=first_memory.peak_anon < 2000),
        Row(stage="scale", name="peak memory of the largest tokenizing worker", value=workers.peak, unit="MB",
            target="< 2,000", met=workers.peak < 2000),
    ]


def bench_accuracy(args: argparse.Namespace) -> list[Row]:
    """The reference configuration (embedding 400, 2 × 512, batch 400 unless the size flags say otherwise, Adam 0.005,
    `--epochs`) trained on the same split of the bundled sample by our trainer and by the reference pipeline; test
    accuracy of each."""
    device = pick_device(args.device)
    splits = split_indices(len(load_reviews(args.review_file)[0]))
    features, labels, word2idx = reference_preprocess(args.review_file, None, 200, vocab_rows=splits.train)
    tick = time.perf_counter()
    sizes = (args.embedding, args.hidden, args.layers)
    reference = reference_fit(features, labels, splits, len(word2idx), args.epochs, device, sizes, args.batch)
    reference_seconds = time.perf_counter() - tick
    preset = PRESETS["reference"]
    with tempfile.TemporaryDirectory() as folder:
        config = replace(preset.train, epochs=args.epochs, batch_size=args.batch, device=args.device)
        model_config = replace(preset.model, embedding_dim=args.embedding, hidden_size=args.hidden, num_layers=args.layers)
        finished = list(train(config, model_config, args.review_file, Path(folder) / "reference.pt"))[-1]
    what = (f"test accuracy, the reference configuration ({args.embedding}/{args.layers}×{args.hidden}, batch "
            f"{args.batch}, {args.epochs} epochs; {finished.seconds:.0f} s vs {reference_seconds:.0f} s)")
    return [Row(stage="accuracy", name=what, value=finished.report.accuracy * 100, unit="%", reference=reference * 100,
                target="≥ reference", met=finished.report.accuracy >= reference)]


def bench_vectors(args: argparse.Namespace) -> list[Row]:
    """The lab model without its language-model pre-training, one epoch on the bundled sample, its embedding started
    from `--checkpoint`'s (pre-trained, exported as a fastText .vec file) against a random start: validation accuracy
    after the epoch, for each seed. `--checkpoint` has seen the sample's training split, never its validation split."""
    preset = PRESETS["lab"]
    config = replace(preset.train, epochs=1, pretrain_epochs=0, titles=False, sentences=0, negated_weight=1.0,
                     negated_praise_weight=1.0, device=args.device)
    accuracies: dict[str, list[float]] = {"random": [], "vectors": []}
    with tempfile.TemporaryDirectory() as folder:
        exported = Path(folder) / f"{args.checkpoint.stem}.vec"
        export(args.checkpoint, exported)
        for seed in args.seeds:
            for start, vectors in (("random", ""), ("vectors", str(exported))):
                events = list(train(replace(config, seed=seed, vectors=vectors), preset.model, "sample",
                                    Path(folder) / f"{start}-{seed}.pt"))
                accuracies[start].append(max(e.val_accuracy for e in events if isinstance(e, Evaluated)) * 100)
                print(f"vectors: seed {seed}, {start} start: {accuracies[start][-1]:.2f}%", flush=True)
    gain = np.mean(accuracies["vectors"]) - np.mean(accuracies["random"])
    seeds = ", ".join(map(str, args.seeds))
    return [
        Row(stage="vectors", name=f"validation accuracy after one epoch from a random embedding (seeds {seeds})",
            value=float(np.mean(accuracies["random"])), unit="%"),
        Row(stage="vectors",
            name=f"the same, the embedding started from {args.checkpoint.name}'s vectors (seeds {seeds})",
            value=float(np.mean(accuracies["vectors"])), unit="%", reference=float(np.mean(accuracies["random"])),
            target="> random start", met=bool(gain > 0)),
    ]


def bench_units(args: argparse.Namespace) -> list[Row]:
    """The Units tab's atlas of `--checkpoint`'s top layer over its test split: cold (the corpus's tokens already
    cached on disk, as after any first use), then kept; the process's own peak memory while it is built; and select
    to match over it."""
    checkpoints = Checkpoints(args.device)  # the app's own cache of what is computed from a checkpoint
    predictor = checkpoints.predictor(args.checkpoint)
    layer, direction = parse_layer(predictor, default_layer(predictor))
    held_out(predictor.checkpoint)  # tokenized and cached on disk once, as the app does on its first use
    with PeakMemory(anon=True) as memory:
        cold = times(lambda: checkpoints.atlas(args.checkpoint, layer, direction), 1, warmup=0)[0]
    atlas = checkpoints.atlas(args.checkpoint, layer, direction)[1]
    kept = times(lambda: checkpoints.atlas(args.checkpoint, layer, direction), 20 * args.repeats, warmup=1)
    phrases = ["not good", "waste of money", "highly recommend", "did n't work", "love"]
    matched = [times(lambda p=p: find_passages(predictor, atlas, "", p, 0.3), args.repeats, warmup=1) for p in phrases]
    slowest = max(float(np.median(m)) for m in matched)
    name = f"{args.checkpoint.name} layer {layer + 1} over its test split ({len(atlas.rows):,} reviews)"
    return [
        Row(stage="units", name=f"atlas of {name}, cold", value=cold, unit="s", target="≤ 15 s", met=cold <= 15),
        Row(stage="units", name="the same atlas, kept, median", value=float(np.median(kept)) * 1e3, unit="ms",
            target="≤ 500 ms", met=float(np.median(kept)) <= 0.5),
        Row(stage="units", name="the process's own peak memory while the atlas is built", value=memory.peak_anon,
            unit="MB"),
        Row(stage="units", name=f"match_units over it, the slowest median of {len(phrases)} phrases", value=slowest,
            unit="s", target="≤ 2 s", met=slowest <= 2),
    ]


STAGES = {"prep": bench_prep, "train": bench_train, "inspect": bench_inspect, "serve": bench_serve,
          "quality": bench_quality, "curve": bench_curve, "scale": bench_scale, "accuracy": bench_accuracy,
          "vectors": bench_vectors, "units": bench_units}
