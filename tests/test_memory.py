"""RNN, GRU and LSTM side by side: training and checkpoints per cell type, gradient flow, the synthetic memory task
and accuracy by review length."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from sentiment.config import ConfigError, spec_of
from sentiment.memory.__main__ import main
from sentiment.memory.experiment import (
    FORGET_BIAS,
    MARKERS,
    STEPS,
    MemorySettings,
    MemoryTask,
    accuracy_by_length,
    gradient_norms,
    memory_experiment,
    train_memory_model,
)
from sentiment.model.checkpoint import load_checkpoint
from sentiment.model.network import ModelConfig, SentimentNet
from sentiment.model.predictor import load_predictor
from sentiment.train.config import TrainConfig
from sentiment.train.events import Finished
from sentiment.train.loop import train


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_each_cell_type_trains_and_round_trips_through_a_checkpoint(cell, tmp_path):
    out = tmp_path / f"{cell}.pt"
    config = TrainConfig(batch_size=32, epochs=1, max_steps=6, eval_every=3, limit=600, lr=0.01)
    events = list(train(config, ModelConfig(embedding_dim=16, hidden_size=12, num_layers=2, cell=cell), out=out))
    assert isinstance(events[-1], Finished) and events[-1].steps == 6
    checkpoint = load_checkpoint(out)
    assert checkpoint.model_config.cell == cell
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    predictor = load_predictor(out, device="cpu")
    assert type(predictor.model.rnn) is module
    texts = ["Sturdy and cheap, very happy with it", "Broke in a week, do not buy"]
    model = checkpoint.build_model()
    encoded = predictor.encode(texts)
    ids, lengths, _ = encoded.batch(np.arange(2))
    with torch.no_grad():
        direct = torch.sigmoid(model(ids, lengths)).tolist()
    assert predictor.predict(texts) == pytest.approx(direct, abs=1e-6)


def test_the_memory_settings_are_declared_once_and_checked_from_there():
    bias = spec_of(ModelConfig, "forget_bias")
    assert (FORGET_BIAS.low, FORGET_BIAS.high) == (bias.low, bias.high)  # the review model's range, written once
    assert (STEPS.label, STEPS.high) == ("most training steps per model", 5000)
    with pytest.raises(ConfigError, match="forget-gate bias must be between -10 and 10; got 99"):
        MemorySettings(forget_bias=99).validate()
    with pytest.raises(ConfigError, match="cell type must be one of lstm, gru, rnn; got 'transformer'"):
        train_memory_model("transformer", MemoryTask(distance=5))


def test_unknown_cell_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="cell type must be one of lstm, gru, rnn"):
        ModelConfig(vocab_size=10, cell="transformer").validate()


def test_lstm_forget_gates_start_at_the_configured_bias():
    model = SentimentNet(ModelConfig(vocab_size=10, hidden_size=4, num_layers=2, bidirectional=True, forget_bias=2.5))
    for name, bias in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(bias[4:8] == 2.5)
        elif name.startswith("bias_hh"):
            assert torch.all(bias[4:8] == 0)
    torch.manual_seed(0)
    untouched = SentimentNet(ModelConfig(vocab_size=10, hidden_size=4, num_layers=1))  # forget_bias None
    torch.manual_seed(0)
    plain = torch.nn.Embedding(10, 400, padding_idx=0), torch.nn.LSTM(400, 4, 1, batch_first=True)
    assert torch.equal(untouched.rnn.bias_ih_l0, plain[1].bias_ih_l0)  # PyTorch's own initialisation


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_gradient_norms_match_autograd_on_a_tiny_model(cell):
    torch.manual_seed(0)
    model = SentimentNet(ModelConfig(vocab_size=30, embedding_dim=5, hidden_size=6, num_layers=2, cell=cell)).double().eval()
    ids = torch.randint(2, 30, (9,))
    norms = gradient_norms(model, ids)
    assert norms.shape == (9,)

    # Independently: the full Jacobian of the logit with respect to the embedded review, by torch.autograd.functional.
    def logit(embedded):  # (9, E) → scalar
        lengths = torch.tensor([9])
        return model.classify(model.readout(model.run_layers(embedded[None], lengths)[-1], lengths)).sum()

    embedded = model.embedding(ids).detach()
    jacobian = torch.autograd.functional.jacobian(logit, embedded)  # (9, E)
    assert norms == pytest.approx(jacobian.norm(dim=-1).numpy(), rel=1e-6)
    # And one finite difference, so both are checked against the model's own forward pass.
    step = torch.zeros_like(embedded)
    step[2, 1] = 1e-6
    difference = (logit(embedded + step) - logit(embedded - step)).item() / 2e-6
    assert difference == pytest.approx(jacobian[2, 1].item(), rel=1e-5)


def test_memory_task_puts_the_label_marker_distance_steps_before_the_end():
    task = MemoryTask(distance=7, lead=3)
    ids, lengths, labels = task.sample(50, np.random.default_rng(0))
    assert ids.shape == (50, 11) and torch.all(lengths == 11)
    assert torch.equal(ids[:, 3], torch.tensor(MARKERS)[labels])
    others = torch.cat([ids[:, :3], ids[:, 4:]], dim=1)
    assert torch.all(others > MARKERS[1]) and 0 < labels.sum() < 50


def test_lstm_remembers_a_short_distance_within_its_budget():
    result = train_memory_model("lstm", MemoryTask(distance=5), MemorySettings(steps=300, seconds=30, seed=0))
    assert result.accuracy >= 0.95 and result.steps <= 300


def test_memory_experiment_streams_one_result_per_cell_and_distance():
    settings = MemorySettings(steps=5, hidden_size=8)
    results = list(memory_experiment(["rnn", "lstm"], [10, 3], settings))
    assert [(r.distance, r.cell) for r in results] == [(3, "rnn"), (3, "lstm"), (10, "rnn"), (10, "lstm")]
    assert all(r.steps == 5 and not r.solved_early for r in results)  # 5 steps cannot reach 99%
    with pytest.raises(ConfigError, match="at least one"):
        list(memory_experiment([], [5], settings))


def test_accuracy_by_length_covers_the_held_out_split(trained):
    path, finished, _ = trained
    predictor = load_predictor(path, device="cpu")
    buckets = accuracy_by_length(predictor)
    assert [b.label for b in buckets] == ["1–25", "26–50", "51–100", "101–150", "> 150"]
    assert sum(b.reviews for b in buckets) == finished.report.n
    correct = sum(b.accuracy * b.reviews for b in buckets if b.reviews)
    assert correct / finished.report.n == pytest.approx(finished.report.accuracy, abs=1e-9)


def test_memory_command_prints_each_measurement(capsys):

    main(["--checkpoints", "default.pt", "--cells", "lstm", "--distances", "3", "--steps", "5"])
    out = capsys.readouterr().out
    assert re.search(r"default\.pt +d=0: [\d.e+-]+ .*\(falls [\d,]+×\)", out)
    assert re.search(r"1–25: [\d.]+% \(\d+\)", out) and re.search(r"lstm distance +3: +[\d.]+% after +\d+ steps", out)
