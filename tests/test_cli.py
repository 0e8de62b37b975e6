import subprocess
import sys

import pytest

from sentiment.data.preprocessing import PREPROCESSING_VERSION
from sentiment.model.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.slow  # subprocesses: each starts Python and torch


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, input=stdin, timeout=300)


def test_predict_cli_scores_reviews(trained):
    result = run("sentiment.predict", "--checkpoint", str(trained[0]), "Absolutely love it, works great.", "Terrible, broke at once. Do not buy.")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("positive") and second.startswith("negative")


def test_predict_cli_notes_a_checkpoint_trained_under_another_preprocessing_version(trained, tmp_path):
    checkpoint = load_checkpoint(trained[0])
    checkpoint.data["preprocessing_version"] = PREPROCESSING_VERSION + 1
    older = save_checkpoint(tmp_path / "other.pt", checkpoint)
    result = run("sentiment.predict", "--checkpoint", str(older), "Absolutely love it, works great.")
    assert result.returncode == 0 and result.stdout.startswith("positive")
    version = PREPROCESSING_VERSION + 1
    assert result.stderr.startswith(f"note: This checkpoint was trained on text read by preprocessing version {version};")
    assert "note:" not in run("sentiment.predict", "--checkpoint", str(trained[0]), "Works great.").stderr


def test_evaluate_cli_prints_the_report_on_the_checkpoints_own_test_split(trained):
    result = run("sentiment.evaluate", "--checkpoint", str(trained[0]))
    assert result.returncode == 0, result.stderr
    assert "test split" in result.stdout and "accuracy" in result.stdout and "F1" in result.stdout
    _, finished, _ = trained
    assert f"{finished.report.accuracy:.2%}" in result.stdout  # same split, same encoding, same number


def test_train_cli_runs_a_few_steps(tmp_path):
    out = tmp_path / "cli.pt"
    result = run("sentiment.train", "--preset", "quick", "--limit", "400", "--max-steps", "3", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert out.exists() and "test report" in result.stdout


def test_train_cli_keeps_the_seed_with_the_lowest_validation_loss(tmp_path):
    out = tmp_path / "best.pt"
    result = run("sentiment.train", "--preset", "quick", "--limit", "400", "--max-steps", "4", "--eval-every", "2",
                 "--seeds", "3", "5", "--out", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("seed  validation loss  test accuracy")[1].splitlines()[1:3]
    losses = {int(line.split()[0]): float(line.split()[1]) for line in table}
    kept = min(losses, key=losses.get)
    assert f"kept seed {kept} (lowest validation loss)" in result.stdout
    assert load_checkpoint(out).train_config["seed"] == kept
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # the other runs' files are gone


@pytest.mark.parametrize(
    "args,message",
    [
        (("sentiment.train", "--data", "/nonexistent/reviews.txt", "--max-steps", "1"), "no such file"),
        (("sentiment.train", "--hidden-size", "0"), "hidden size must be between"),
        (("sentiment.train", "--lr", "-1"), "learning rate must be between"),
        (("sentiment.train", "--epochs", "lots"), "invalid int value"),
        (("sentiment.evaluate", "--checkpoint", "/nonexistent.pt"), "no such checkpoint"),
        (("sentiment.predict", "--checkpoint", "sentiment/__init__.py", "fine"), "not a readable checkpoint"),
        (("sentiment.predict", "   "), "The review is empty: type or paste a customer review first"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, message):
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_train_cli_reports_a_bad_data_file_clearly(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nonly positive,1\nalso positive,1\n")
    result = run("sentiment.train", "--data", str(bad), "--max-steps", "1", "--out", str(tmp_path / "x.pt"))
    assert result.returncode == 2 and "every review is positive" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.pt").exists()


def test_evaluating_reviews_of_one_class_reports_that_classes_recall(tmp_path):
    only = tmp_path / "praise.txt"
    only.write_text("__label__2 Works great, love it.\n__label__2 Best kettle I have owned.\n__label__2 Five stars.\n")
    result = run("sentiment.evaluate", "--data", str(only))
    assert result.returncode == 0, result.stderr
    assert "reviews    3" in result.stdout and "every review here is positive: the accuracy is the recall" in result.stdout
