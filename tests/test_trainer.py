import threading
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch

from conftest import SMALL_MODEL, SMALL_TRAIN
from sentiment.checkpoint import load_checkpoint
from sentiment.model import ConfigError, ModelConfig, SentimentNet
from sentiment.scoring import evaluate, held_out
from sentiment.trainer import Evaluated, Finished, Preparing, Step, TrainConfig, length_bucketed_batches, train


def test_short_run_on_real_reviews_learns_and_reports(trained):
    path, finished, events = trained
    assert isinstance(events[0], Preparing)
    evaluations = [e for e in events if isinstance(e, Evaluated)]
    steps = [e for e in events if isinstance(e, Step)]
    assert max(e.val_accuracy for e in evaluations) > 0.75
    assert steps[-1].step == finished.steps and steps[-1].eta_s == pytest.approx(0.0)
    assert all(s.reviews_per_s > 0 for s in steps)
    report = finished.report
    assert report.n == 600 and sum(map(sum, report.confusion)) == 600
    saved = load_checkpoint(path)
    assert saved.metrics["test"] == asdict(report)
    assert saved.metrics["best_val_loss"] == pytest.approx(min(e.val_loss for e in evaluations))
    # The report describes the saved file: the same reviews scored again by the loaded checkpoint.
    corpus, rows = held_out(saved)
    assert evaluate(saved.build_model(), corpus.encode(saved.vocab, rows, saved.max_len)) == report


def _run(out, **changes):
    return list(train(replace(SMALL_TRAIN, **changes), SMALL_MODEL, out=out))


def test_same_seed_same_result_and_odd_last_batch(tmp_path):
    out = tmp_path / "a.pt"
    config = dict(limit=300, epochs=1, batch_size=37, max_steps=0)  # 240 training reviews: last batch of 18
    first = [e.train_loss for e in _run(out, **config) if isinstance(e, Step)]
    second = [e.train_loss for e in _run(out, **config) if isinstance(e, Step)]
    assert len(first) == 7 and first == second
    third = [e.train_loss for e in _run(out, **config, seed=1) if isinstance(e, Step)]
    assert third != first


def test_stop_flag_ends_the_run_between_batches_and_keeps_a_tested_checkpoint(tmp_path):
    stop = threading.Event()
    out = tmp_path / "stopped.pt"
    events = []
    for event in train(replace(SMALL_TRAIN, limit=1000, eval_every=0), SMALL_MODEL, out=out, stop=stop):
        events.append(event)
        if isinstance(event, Step) and event.step == 3:
            stop.set()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.stopped and finished.steps == 3
    assert finished.report is not None and load_checkpoint(out).metrics["steps"] == 3


def test_max_steps_and_early_stopping(tmp_path):
    out = tmp_path / "b.pt"
    assert _run(out, limit=600, max_steps=4)[-1].steps == 4
    events = _run(out, limit=600, epochs=50, eval_every=2, patience=1, lr=0.5)
    assert events[-1].reason == "early stop" and events[-1].steps < 50 * 8


@pytest.mark.parametrize("field,value", [("lr", 0), ("batch_size", -5), ("epochs", 10**9), ("schedule", "zigzag"), ("device", "tpu")])
def test_odd_hyper_parameters_are_refused_before_any_work(field, value):
    with pytest.raises(ConfigError):
        next(train(replace(TrainConfig(), **{field: value})))


def test_length_buckets_cover_every_review_once_and_group_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 200, size=1000)
    batches = length_bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 20  # random batches would spread ~190


def test_weight_averaging_keeps_the_average_not_the_last_step(tmp_path):
    """With an EMA decay of 0.99999 three steps barely move the average: the kept weights are the seeded start."""
    model_config = ModelConfig(embedding_dim=8, hidden_size=8, num_layers=1)
    config = TrainConfig(batch_size=32, epochs=1, max_steps=3, eval_every=3, limit=400, lr=0.05, ema=0.99999)
    list(train(config, model_config, out=tmp_path / "ema.pt"))
    checkpoint = load_checkpoint(tmp_path / "ema.pt")
    torch.manual_seed(config.seed)
    start = SentimentNet(replace(model_config, vocab_size=checkpoint.model_config.vocab_size)).state_dict()
    kept = checkpoint.state_dict
    assert max(float((kept[k] - start[k]).abs().max()) for k in start) < 1e-3
    list(train(replace(config, ema=0.0), model_config, out=tmp_path / "last.pt"))
    last = load_checkpoint(tmp_path / "last.pt").state_dict
    assert max(float((last[k] - start[k]).abs().max()) for k in start) > 1e-2  # lr 0.05 moves the raw weights
