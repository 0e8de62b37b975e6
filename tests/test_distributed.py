"""Beyond one process: torchrun with DistributedDataParallel on Gloo (CPU), mixed precision, the on-disk token cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sentiment.data.corpus as corpus_module
from sentiment.config import ConfigError
from sentiment.data.corpus import tokenize_corpus
from sentiment.model.checkpoint import load_checkpoint
from sentiment.model.network import ModelConfig
from sentiment.model.predictor import load_predictor
from sentiment.model.scoring import evaluate, held_out
from sentiment.train.config import TrainConfig, autocast_runs
from sentiment.train.distributed import rank_share
from sentiment.train.events import Finished
from sentiment.train.loop import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_two_gloo_ranks_train_in_step_and_rank_0_writes_a_checkpoint(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SENTIMENT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "sentiment.train",
               "--preset", "quick", "--limit", "600", "--max-steps", "6", "--eval-every", "3", "--out", str(out), "--quiet"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rank 0 of 2 (Gloo)" in run.stdout
    assert "weights identical on all 2 ranks (checked)" in run.stdout  # the trainer all-gathers and compares them
    assert run.stdout.count("Reading and tokenizing") == 1  # only rank 0 speaks
    checkpoint = load_checkpoint(out)
    assert checkpoint.metrics["steps"] == 6 and checkpoint.train_config["batch_size"] == 64
    # A normal checkpoint the app loads, whose report is what its saved weights score on its test split.
    corpus, rows = held_out(checkpoint)
    report = evaluate(load_predictor(out, device="cpu").model, corpus.encode(checkpoint.vocab, rows, checkpoint.max_len))
    assert report.accuracy == checkpoint.metrics["test"]["accuracy"] and report.n == 60


@pytest.mark.slow
def test_the_lab_recipe_pre_training_and_sentences_included_runs_on_two_gloo_ranks(tmp_path):
    out = tmp_path / "lab.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SENTIMENT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "sentiment.train",
               "--preset", "lab", "--data", "sample+more", "--limit", "1200", "--pretrain-epochs", "1", "--epochs", "1",
               "--hidden-size", "32", "--embedding-dim", "32", "--max-vocab", "3000", "--out", str(out), "--quiet"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rank 0 of 2 (Gloo)" in run.stdout and "weights identical on all 2 ranks (checked)" in run.stdout
    checkpoint = load_checkpoint(out)
    assert checkpoint.train_config["pretrain_epochs"] == 1 and checkpoint.train_config["sentences"] == 2
    assert checkpoint.train_config["titles"] and list(checkpoint.data["sources"])[0] == "sample"
    assert np.isfinite(checkpoint.metrics["best_val_loss"]) and checkpoint.metrics["test"]["n"] > 0


@pytest.mark.slow
def test_two_gloo_ranks_take_the_steps_one_process_takes(tmp_path):
    """The lab recipe, pre-training and sentences included, on a small slice: two ranks read halves of the same
    batches and average their weighted gradients, so their weights are one process's up to float rounding (with
    dropout off: each process would draw masks for its half of a batch, not for the whole)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SENTIMENT_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    recipe = ["-m", "sentiment.train", "--preset", "lab", "--data", "sample+more", "--limit", "600",
              "--pretrain-epochs", "1", "--epochs", "1", "--hidden-size", "32", "--embedding-dim", "32",
              "--max-vocab", "2000", "--dropout", "0", "--embedding-dropout", "0", "--keep-language-model", "--quiet"]
    for launcher, out in (([], "one.pt"), (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
                                           "two.pt")):
        run = subprocess.run([sys.executable, *launcher, *recipe, "--out", str(tmp_path / out)], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
    assert "rank 0 of 2 (Gloo)" in run.stdout
    for kept in ("one.pt", "two.pt", "lm/one.pt", "lm/two.pt"):
        assert (tmp_path / kept).is_file(), kept
    one, two = load_checkpoint(tmp_path / "one.pt"), load_checkpoint(tmp_path / "two.pt")
    assert one.metrics["steps"] == two.metrics["steps"] > 20
    _assert_one_float16_step_apart(one.state_dict, two.state_dict)
    pretrained = [load_checkpoint(tmp_path / "lm" / name).state_dict for name in ("one.pt", "two.pt")]
    _assert_one_float16_step_apart(*pretrained)  # the language model, as pre-training left it


def _assert_one_float16_step_apart(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> None:
    """Checkpoints store weights in float16. One process and two ranks sum the same gradients in another order, so
    their float32 weights differ in the last bits, and a weight that lies near a rounding boundary is stored one
    float16 step apart: 2**-10 of its size (rtol). Near zero, where that step is finer than the float32 drift of a
    run's steps, the drift itself is allowed (atol)."""
    assert one.keys() == two.keys()
    for name, weights in one.items():
        torch.testing.assert_close(weights, two[name], rtol=torch.finfo(torch.float16).eps, atol=1e-5,
                                   msg=lambda message: f"{name}: {message}")


def test_every_row_of_every_batch_is_read_by_one_rank_and_a_rank_left_without_one_counts_none():
    batches = [np.array([5, 6, 7]), np.array([9])]
    ranks = [list(rank_share(batches, rank, 2)) for rank in (0, 1)]
    for b, batch in enumerate(batches):
        assert all(np.array_equal(ranks[r][b][0], batch) for r in (0, 1))  # each knows the whole batch
        counted = [row for r in (0, 1) if ranks[r][b][2] for row in ranks[r][b][1]]
        assert sorted(counted) == list(batch)
    assert list(ranks[1][1][1]) == [9] and ranks[1][1][2] is False  # it still takes part in the step
    assert [(list(rows), counted) for _, rows, counted in rank_share(batches, 0, 1)] == [([5, 6, 7], True), ([9], True)]


def test_bf16_autocast_trains_on_a_cpu_that_runs_it_is_refused_on_one_that_cannot_and_fp16_asks_for_cuda(tmp_path):
    config = TrainConfig(batch_size=32, epochs=1, max_steps=4, eval_every=2, limit=400, precision="bf16", device="cpu")
    if not autocast_runs("cpu", "bf16"):  # oneDNN has no bf16 LSTM for some CPUs (AMD EPYC among them)
        with pytest.raises(ConfigError, match="this CPU cannot run an LSTM in bf16"):
            config.validate()
        return
    events = list(train(config, ModelConfig(embedding_dim=16, hidden_size=16, num_layers=1), out=tmp_path / "bf16.pt"))
    assert isinstance(events[-1], Finished) and np.isfinite(events[-1].report.loss)
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        TrainConfig(precision="fp16", device="cpu").validate()
    with pytest.raises(ConfigError, match="precision must be one of"):
        TrainConfig(precision="int8").validate()


def _write(path: Path, n: int) -> None:
    path.write_text("".join(f"__label__{1 + i % 2} Review {i}: {'works great' if i % 2 else 'broke fast'}.\n"
                            for i in range(n)))


def test_the_cache_is_a_memory_mapped_folder_with_a_manifest(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "r.txt"
    _write(data, 40)
    first = tokenize_corpus(data)
    (folder,) = (tmp_path / "cache").glob("corpus-*")
    manifest = json.loads((folder / "manifest.json").read_text())
    stat = data.stat()
    assert manifest["source"] == str(data.resolve()) and manifest["size"] == stat.st_size
    assert manifest["mtime_ns"] == stat.st_mtime_ns and manifest["reviews"] == 40
    assert manifest["preprocessing_version"] == corpus_module.PREPROCESSING_VERSION
    assert manifest["tokens"] == len(first.token_ids) == first.offsets[-1]
    assert isinstance(first.token_ids, np.memmap)
    # A new preprocessing version is another cache: the old one is not reused.
    monkeypatch.setattr(corpus_module, "PREPROCESSING_VERSION", corpus_module.PREPROCESSING_VERSION + 1)
    assert not tokenize_corpus(data).from_cache
    assert len(list((tmp_path / "cache").glob("corpus-*"))) == 2


def test_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "r.txt"
    _write(data, 30)
    expected = np.array(tokenize_corpus(data).token_ids)
    (folder,) = (tmp_path / "cache").glob("corpus-*")
    with open(folder / "token_ids.i32", "r+b") as f:
        f.truncate(8)
    again = tokenize_corpus(data)
    assert not again.from_cache and np.array_equal(again.token_ids, expected)
