"""Bad input through the running app's API: each case gets a clear message, never a traceback, and the app keeps
serving afterwards. The same checks in the package are in test_data.py and test_checkpoint.py."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import torch
from app_api import hyper_parameter_index, positive_probability, train_args, value
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from test_checkpoint import RunsCodeOnLoad

import app
from sentiment.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, load_predictor

POSITIVE = app.EXAMPLES[0]


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def default_predictor():
    return load_predictor(DEFAULT_CHECKPOINT, device="cpu")


def assert_still_serving(client, default_predictor):
    label = client.predict(POSITIVE, "default.pt", "0", 4, api_name="/predict")[0]
    assert positive_probability(label) == pytest.approx(default_predictor.predict(POSITIVE)[0], abs=1e-4)


# ---------------------------------------------------------------- reviews

def test_a_one_megabyte_review_reads_its_first_tokens(client, default_predictor):
    review = ("The kettle boils fast and I love it. " * 30_000)[:1_000_000]
    label, summary, highlights, *_ = client.predict(review, "default.pt", "0", 4, api_name="/predict")
    assert "only the first 200" in value(summary)
    assert len(value(highlights)) == 200
    assert positive_probability(label) == pytest.approx(default_predictor.predict(review)[0], abs=1e-4)


@pytest.mark.parametrize("review", [
    "Love it 😀😀 would buy again 👍",
    "とても良い製品です。満足しています。",
    "ممتاز جدا، أنصح به",
    "Broke\x00 after\x07 a\x1b[31m week\u202e, awful",
])
def test_emoji_other_scripts_and_control_characters(client, default_predictor, review):
    label, _, highlights, *_ = client.predict(review, "default.pt", "0", 4, api_name="/predict")
    tokens = [item["token"] for item in value(highlights)]
    assert tokens and not any(ch in token for token in tokens for ch in "\x00\x07\x1b")
    assert positive_probability(label) == pytest.approx(default_predictor.predict(review)[0], abs=1e-4)


def test_html_is_read_as_text(client):
    _, _, highlights, *_ = client.predict("<script>alert('x')</script> <b>Great</b> value", "default.pt", "0", 4,
                                          api_name="/predict")
    tokens = [item["token"] for item in value(highlights)]
    assert "script" in tokens and "<" in tokens and "great" in tokens


@pytest.mark.parametrize("review,message", [("", "empty"), (" \n\t ", "empty"), ("\x00\x01\x02", "Nothing to read")])
def test_reviews_with_nothing_to_read(client, default_predictor, review, message):
    with pytest.raises(AppError, match=message):
        client.predict(review, "default.pt", "0", 4, api_name="/predict")
    assert_still_serving(client, default_predictor)


# ---------------------------------------------------------------- uploads

UPLOADS = {
    "empty.txt": (b"", "the file is empty"),
    "binary.txt": (bytes(range(256)) * 64, "looks binary"),
    "notes.txt": (b"Shopping list\nmilk, eggs\n", "not a review file"),
    "no_label.csv": (b"review,stars_given\nGreat kettle,5\nAwful,1\n", "no label column"),
    "bad_labels.txt": (b"__label__3 fine\n__label__9 bad\n", "no usable review"),
    "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "expected one of|Invalid file type"),
}


@pytest.mark.parametrize("name", UPLOADS)
def test_unusable_uploads_are_refused_before_a_run_starts(client, default_predictor, tmp_path, name):
    content, message = UPLOADS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")
    assert not app.runner.snapshot().active
    assert_still_serving(client, default_predictor)


def test_an_upload_over_the_size_limit(client, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "SETTINGS", replace(app.SETTINGS, max_upload_mb=1))
    path = tmp_path / "big.csv"
    path.write_bytes(b"text,label\n" + b"a fine kettle that works,1\n" * 50_000)  # 1.3 MB
    with pytest.raises(AppError, match="larger than the 1 MB upload limit"):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")


def test_a_single_class_upload_fails_the_run_with_a_reason(client, default_predictor, tmp_path):
    path = tmp_path / "only_praise.csv"
    path.write_text("text,label\n" + "".join(f"great kettle number {i},1\n" for i in range(50)))
    final = client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")
    assert "Failed" in value(final[0]) and "every review is positive; training needs both classes" in value(final[0])
    assert_still_serving(client, default_predictor)


def test_public_demo_switches_refuse_uploads_and_training(client, tmp_path, monkeypatch):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngreat,1\nawful,0\nfine,1\n")
    monkeypatch.setattr(app, "SETTINGS", app.Settings(public=True, allow_uploads=False))
    with pytest.raises(AppError, match="Uploads are turned off"):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")
    monkeypatch.setattr(app, "SETTINGS", app.Settings(public=True, allow_training=False))
    with pytest.raises(AppError, match="Training is turned off"):
        client.predict(*train_args(100, 1), api_name="/train")
    assert not app.runner.snapshot().active


# ---------------------------------------------------------------- hyper-parameters

@pytest.mark.parametrize("name,bad,message", [
    ("hidden_size", "many", "must be a number"),
    ("hidden_size", 0, "hidden_size must be between"),
    ("hidden_size", -3, "hidden_size must be between"),
    ("hidden_size", 10**7, "hidden_size must be between"),
    ("lr", 0, "lr must be between"),
    ("lr", -0.1, "lr must be between"),
    ("batch_size", 10**9, "batch_size must be between"),
    ("epochs", 1e300, "epochs must be between"),
    ("dropout", 1.5, "dropout must be between"),
    ("num_layers", 2.5, "whole number"),
    ("row limit", 2.5, "row limit must be a whole number"),
    ("row limit", "lots", "row limit must be a whole number"),
])
def test_odd_hyper_parameters(client, name, bad, message):
    args = train_args(400, 1)
    args[2 if name == "row limit" else hyper_parameter_index(name)] = bad
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/train")
    assert not app.runner.snapshot().active


# ---------------------------------------------------------------- checkpoints

@pytest.fixture
def checkpoint_file():
    """Write a file into checkpoints/ under a unique name, as someone dropping a file there would; removed after."""
    written = []

    def write(content: bytes | None = None, payload=None) -> str:
        path = CHECKPOINT_DIR / f"bad-{uuid.uuid4().hex[:8]}.pt"
        if payload is not None:
            torch.save(payload, path)
        else:
            path.write_bytes(content)
        written.append(path)
        return path.name

    yield write
    for path in written:
        path.unlink(missing_ok=True)


def test_unusable_checkpoints_are_refused_by_name(client, default_predictor, checkpoint_file, tmp_path):
    good = DEFAULT_CHECKPOINT.read_bytes()
    future = torch.load(DEFAULT_CHECKPOINT, weights_only=True) | {"format_version": 99}
    marker = tmp_path / "code-ran"
    cases = [
        (checkpoint_file(good[: len(good) // 3]), "not a readable checkpoint"),
        (checkpoint_file(b"\x00" * 1024), "not a readable checkpoint"),
        (checkpoint_file(payload={"weight": torch.zeros(3)}), "not an LSTM Sentiment Lab checkpoint"),
        (checkpoint_file(payload=future), "format version 99 is newer"),
        (checkpoint_file(payload={"format": "lstm-sentiment-lab", "x": RunsCodeOnLoad(marker)}), "refused"),
        ("../app.py", "not a checkpoint name"),
        ("../../etc/passwd.pt", "not a checkpoint name"),
    ]
    for name, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(POSITIVE, name, "0", 4, api_name="/predict")
        with pytest.raises(AppError, match=message):
            client.predict(name, api_name="/checkpoint_layers")
    assert not marker.exists()  # the pickle's code never ran
    assert_still_serving(client, default_predictor)


# ---------------------------------------------------------------- basic auth

def test_basic_auth_keeps_out_a_client_without_the_password(free_port):
    auth = app.parse_auth("reviewer:s3cret:with-colon")
    assert auth == ("reviewer", "s3cret:with-colon")
    for bad in ("nopassword", ":x", "user:"):
        with pytest.raises(ValueError, match="USER:PASSWORD"):
            app.parse_auth(bad)
    demo = app.build_demo()
    demo.launch(prevent_thread_lock=True, server_port=free_port, quiet=True, auth=auth)
    try:
        url = f"http://127.0.0.1:{free_port}/"
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        shapes = Client(url, auth=auth, verbose=False).predict("lstm", 5, 10, 1, 1, 3, True, False, api_name="/playground")[1]
        assert value(shapes)["data"][0][1] == "(1, 3, 5)"
    finally:
        demo.close()


@pytest.mark.parametrize("cells,distances,bias,steps,message", [
    (["lstm"], [5], None, 100, "forget-gate bias must be a number between"),
    (["lstm"], [5], 1.0, 0, "steps per model must be between 1 and 5000"),
    (["lstm"], [5], 1.0, 2.5, "whole number"),
    (["lstm"], [5], 99.0, 100, "forget-gate bias must be between"),
    (["lstm"], [], 1.0, 100, "at least one"),
])
def test_memory_experiment_refuses_odd_settings(client, cells, distances, bias, steps, message):
    with pytest.raises(AppError, match=message):
        client.predict(cells, distances, bias, steps, api_name="/memory_experiment")


def test_memory_comparison_refuses_empty_input(client):
    with pytest.raises(AppError, match="review is empty"):
        client.predict("  ", ["default.pt"], api_name="/compare_memory")
    with pytest.raises(AppError, match="at least one checkpoint"):
        client.predict("Great", [], api_name="/compare_memory")
    with pytest.raises(AppError, match="not a checkpoint name"):
        client.predict(["../app.py"], api_name="/accuracy_by_length")
