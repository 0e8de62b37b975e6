"""Hyper-parameter search: trials are real training runs, the pruner stops bad ones, the best checkpoint is kept, and
workers share a study through its storage."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import optuna
import pytest

from sentiment.config import ConfigError
from sentiment.model.checkpoint import load_checkpoint
from sentiment.search.study import Search, SearchSettings, storage

pytestmark = pytest.mark.slow  # each trial trains a small model


def test_a_search_runs_its_trials_and_keeps_the_best_checkpoint(tmp_path):
    settings = SearchSettings(trials=4, study="one", storage=f"journal:{tmp_path / 'search.journal'}", limit=400,
                              max_epochs=2)
    search = Search(settings, workdir=tmp_path)
    done = list(search.run())
    assert [d.number for d in done] == [0, 1, 2, 3] and all(d.state in ("complete", "pruned") for d in done)
    complete = [d for d in done if d.state == "complete"]
    best = min(complete, key=lambda d: d.val_loss)
    assert done[-1].best_number == best.number and done[-1].best_loss == pytest.approx(best.val_loss)
    kept = search.keep_best(tmp_path / "best.pt")
    checkpoint = load_checkpoint(kept)
    assert checkpoint.metrics["best_val_loss"] == pytest.approx(best.val_loss, abs=1e-6)
    assert checkpoint.model_config.hidden_size == best.params["hidden_size"]
    assert checkpoint.model_config.cell == best.params["cell"]
    # Each trial reported its validation loss after every epoch: what a pruner reads.
    trials = optuna.load_study(study_name="one", storage=storage(settings.storage)).trials
    assert all(len(t.intermediate_values) == d.epochs for t, d in zip(trials, done))


@pytest.mark.parametrize("changes,message", [
    (dict(storage="ftp://example.org/x"), "storage must be journal:FILE, sqlite:///FILE, postgresql://… or mysql://…"),
    (dict(storage="journal:/no/such/folder/s.journal"), "the folder /no/such/folder does not exist"),
    (dict(storage="sqlite:////no/such/folder/s.db"), "cannot open it"),
    (dict(storage="postgresql://me:secret@localhost:1/db"), "postgresql://me:\\*\\*\\*@localhost:1/db"),
    (dict(storage="postgresql://me:sec@ret@localhost:1/db"), "postgresql://me:\\*\\*\\*@localhost:1/db"),
    (dict(trials=-1), "trials must be between 0 and 10000"),
    (dict(trials=2.5), "trials must be a whole number"),
    (dict(timeout=-5), "timeout must be between 0 and"),
    (dict(study=""), "study must be a name of 1 to 100 characters"),
    (dict(preset="huge"), "preset must be one of"),
    (dict(pruner="hyperband"), "pruner must be one of median, halving"),
])
def test_bad_search_settings_are_refused_before_any_training(changes, message):
    with pytest.raises(ConfigError, match=message) as refused:
        SearchSettings(**changes).validate()
    assert "secret" not in str(refused.value) and "ret@" not in str(refused.value)  # a password is never shown


def test_two_workers_share_one_study_through_a_journal_file(tmp_path):
    journal = f"journal:{tmp_path / 'shared.journal'}"
    command = [sys.executable, "-m", "sentiment.search", "--study", "shared", "--storage", journal, "--limit", "300",
               "--max-epochs", "1", "--workdir", str(tmp_path), "--out", str(tmp_path / "best.pt")]
    workers = [subprocess.Popen([*command, "--trials", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outputs]
    numbers = sorted(int(n) for out, _ in outputs for n in re.findall(r"^trial (\d+) ", out, re.MULTILINE))
    assert numbers == [0, 1, 2, 3]  # four trials, each numbered once, whichever worker ran it
    study = optuna.load_study(study_name="shared", storage=storage(journal))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 4  # started together, drawn apart
    # Read from either side once both are done, the best trial is the same.
    reports = [subprocess.run([*command, "--trials", "0"], capture_output=True, text=True, timeout=300).stdout
               for _ in range(2)]
    best = re.search(r"best: trial (\d+), validation loss ([\d.]+)", reports[0])
    assert best and best.group(0) in reports[1] and int(best[1]) == study.best_trial.number
    assert float(best[2]) == pytest.approx(study.best_value, abs=1e-4)


def test_the_search_command_refuses_a_bad_storage_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sentiment.search", "--storage", "redis://x", "--trials", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.strip().startswith("error: storage must be") and "Traceback" not in done.stderr


def test_a_study_that_another_kind_of_run_holds_is_refused_with_a_sentence(tmp_path):
    url = f"journal:{tmp_path / 'held.journal'}"
    optuna.create_study(study_name="maximised", storage=storage(url), direction="maximize")
    with pytest.raises(ConfigError, match="study 'maximised' in this storage maximises its objective"):
        Search(SearchSettings(study="maximised", storage=url), workdir=tmp_path)
    other = optuna.create_study(study_name="other-space", storage=storage(url))
    other.enqueue_trial({"lr": "fast"})
    trial = other.ask()
    trial.suggest_categorical("lr", ["fast", "slow"])
    other.tell(trial, 1.0)
    search = Search(SearchSettings(study="other-space", storage=url, limit=200, max_epochs=1), workdir=tmp_path)
    with pytest.raises(ConfigError, match="holds trials of another search"):
        list(search.run())
