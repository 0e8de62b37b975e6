import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sentiment.model.checkpoint import (
    DEFAULT_CHECKPOINT,
    CheckpointError,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from sentiment.model.predictor import load_predictor


class RunsCodeOnLoad:
    """Unpickling this calls os.system: the classic malicious 'checkpoint'."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_gives_the_same_predictions(trained, tmp_path):
    path, _, _ = trained
    texts = ["Works perfectly, I love it.", "Broke after two days. Waste of money."]
    before = load_predictor(path, "cpu").predict(texts)
    copy = save_checkpoint(tmp_path / "copy.pt", load_checkpoint(path))
    after = load_predictor(copy, "cpu").predict(texts)
    assert after == pytest.approx(before, abs=1e-6)
    loaded = load_checkpoint(copy)
    assert loaded.vocab.itos[:2] == ["_PAD", "_UNK"] and loaded.data["source"] == "sample"
    assert "test" in loaded.metrics and loaded.train_config["max_len"] == 200


def test_corrupt_truncated_and_foreign_files_are_clear_errors(trained, tmp_path):
    good = trained[0].read_bytes()
    cases = {
        "truncated.pt": good[: len(good) // 2],
        "text.pt": b"this is not a checkpoint",
        "empty.pt": b"",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            load_checkpoint(tmp_path / name)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "bare_state_dict.pt")
    with pytest.raises(CheckpointError, match="not an LSTM Sentiment Lab checkpoint"):
        load_checkpoint(tmp_path / "bare_state_dict.pt")


def test_newer_format_version_is_refused(trained, tmp_path):
    payload = torch.load(trained[0], weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")


def test_damaged_metadata_is_a_clear_error_or_shown_cut_short(trained, tmp_path):
    payload = torch.load(trained[0], weights_only=True)
    weight = torch.zeros(4, 3)
    for part, value in (("data", "not a table"), ("metrics", "not a table"), ("language_model", "not a table"),
                        ("language_model", {"decoder.weight": weight}),
                        ("language_model", {"projection.weight": "weights", "projection.bias": torch.zeros(4)}),
                        ("language_model", {"projection.weight": weight, "projection.bias": torch.zeros(4)})):
        torch.save({**payload, part: value}, tmp_path / "damaged.pt")
        with pytest.raises(CheckpointError, match="incomplete or damaged"):
            load_checkpoint(tmp_path / "damaged.pt")
    torch.save({**payload, "data": {**payload["data"], "preprocessing_version": "9" * 10_000}}, tmp_path / "odd.pt")
    note = load_checkpoint(tmp_path / "odd.pt").preprocessing_note
    assert "version '999" in note and len(note) < 400
    torch.save({**payload, "data": {**payload["data"], "preprocessing_version": torch.ones(3)}}, tmp_path / "odd.pt")
    assert "version tensor([1., 1., 1.]);" in load_checkpoint(tmp_path / "odd.pt").preprocessing_note


def test_format_1_checkpoints_still_load(trained, tmp_path):
    """Version 1 (LSTM only) named the recurrent layers `lstm.*` and had no cell type."""
    payload = torch.load(trained[0], weights_only=True)
    payload["format_version"] = 1
    payload["state_dict"] = {k.replace("rnn.", "lstm.", 1): v for k, v in payload["state_dict"].items()}
    del payload["model_config"]["cell"], payload["model_config"]["forget_bias"]
    torch.save(payload, tmp_path / "v1.pt")
    texts = ["Works perfectly, I love it.", "Broke after two days."]
    assert load_predictor(tmp_path / "v1.pt", "cpu").predict(texts) == load_predictor(trained[0], "cpu").predict(texts)


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": "lstm-sentiment-lab", "evil": RunsCodeOnLoad(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    # The file is really malicious: unsafe loading runs its code (harmlessly, a touch in tmp_path).
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_a_failed_save_leaves_the_old_checkpoint_intact(trained, tmp_path, monkeypatch):
    target = tmp_path / "model.pt"
    checkpoint = load_checkpoint(trained[0])
    save_checkpoint(target, checkpoint)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(target, checkpoint)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


SAVER = """
import sys
from sentiment.model.checkpoint import load_checkpoint, save_checkpoint
checkpoint = load_checkpoint(sys.argv[1])
print("saving", flush=True)
while True:
    save_checkpoint(sys.argv[2], checkpoint)
"""


@pytest.mark.slow
def test_killing_a_process_mid_save_leaves_the_old_checkpoint_loadable(trained, tmp_path):
    """SIGKILL a process while it rewrites a checkpoint: the file on disk must always be a whole checkpoint."""
    target = tmp_path / "model.pt"
    save_checkpoint(target, load_checkpoint(trained[0]))
    old_vocab = len(load_checkpoint(target).vocab)
    new_vocab = len(load_checkpoint(DEFAULT_CHECKPOINT).vocab)  # 19 MB: each save takes a while to write
    cut_writes = 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for delay in (0.05, 0.3, 0.7, 1.1):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(DEFAULT_CHECKPOINT), str(target)],
                                 stdout=subprocess.PIPE, text=True, env=env)
        assert saver.stdout.readline().strip() == "saving"
        time.sleep(delay)
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        saver.stdout.close()
        partial = list(tmp_path.glob(".model.pt.*.tmp"))  # a write that was cut off leaves its temporary file
        cut_writes += bool(partial)
        assert len(load_checkpoint(target).vocab) in (old_vocab, new_vocab)
        for path in partial:
            path.unlink()
    assert cut_writes, "no kill landed during a write; the test proved nothing"


def test_weights_are_stored_in_half_precision_and_computed_in_float32(trained, tmp_path):
    payload = torch.load(trained[0], weights_only=True)
    assert payload["format_version"] == 3
    assert {v.dtype for v in payload["state_dict"].values() if v.is_floating_point()} == {torch.float16}
    predictor = load_predictor(trained[0], "cpu")
    assert {p.dtype for p in predictor.model.parameters()} == {torch.float32}
    # A format-2 file (float32 weights) still loads: the same weights give the same predictions.
    payload["format_version"] = 2
    payload["state_dict"] = {k: v.float() for k, v in payload["state_dict"].items()}
    del payload["model_config"]["readout"]
    torch.save(payload, tmp_path / "v2.pt")
    texts = ["Works perfectly, I love it.", "Broke after two days."]
    assert load_predictor(tmp_path / "v2.pt", "cpu").predict(texts) == predictor.predict(texts)


@pytest.mark.parametrize("name,rule", [
    (5, "a checkpoint name is text, like model.pt; got int"),
    ("", "choose a checkpoint file, like model.pt"),
    ("../app.py", "named without folders or '..'"),
    ("sub/model.pt", "named without folders or '..'"),
    ("model.ckpt", "a checkpoint's file name ends in .pt"),
    ("_model.pt", "starts with a letter or a digit"),
    ("m" * 120 + ".pt", "at most 104 characters; this one has 123"),
    ("my model.pt", "holds only letters and digits"),
])
def test_a_refused_checkpoint_name_says_which_rule_it_breaks(name, rule):
    with pytest.raises(CheckpointError, match="is not a checkpoint name: .*" + rule.replace(".", r"\.")):
        resolve_checkpoint(name)
    assert resolve_checkpoint(DEFAULT_CHECKPOINT.name) == DEFAULT_CHECKPOINT
