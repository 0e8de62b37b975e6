"""Bad input through the running app's API: each case gets a clear message, never a traceback, and the app keeps
serving afterwards. A watchdog samples the app's resident memory while the module runs; when the module ends (in
whatever order its tests ran) it checks that memory stayed under 4 GB and that a normal prediction still comes back. The same checks in the package are in test_data.py
and test_checkpoint.py."""
from __future__ import annotations

import gzip
import json
import threading
import uuid
from dataclasses import replace

import pytest
import torch
from app_api import call, positive_probability, train_args, train_input_index
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from test_checkpoint import RunsCodeOnLoad

import app
from sentiment.contract import MAX_TEXT_CHARS
from sentiment.model.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT
from sentiment.model.predictor import load_predictor
from sentiment.settings import Settings
from sentiment.ui.lab import Lab
from sentiment.ui.predict import EXAMPLES

POSITIVE = EXAMPLES[0]
TOKENS = "What each token did (click a token to step inside the cell with it)"  # the Predict tab's token view, by its label


REFUSED: list[str] = []  # every refusal's message, for the summary at the end


class Watchdog:
    """Samples this process's resident memory (the app runs in it) every 20 ms."""

    def __init__(self) -> None:
        self.peak_mb, self._done = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            with open("/proc/self/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            self.peak_mb = max(self.peak_mb, rss)

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak_mb


@pytest.fixture(scope="module")
def default_predictor():
    return load_predictor(DEFAULT_CHECKPOINT, device="cpu")


def assert_still_serving(client, default_predictor):
    label = call(client, "/predict", POSITIVE, "default.pt", "0", 4)["Sentiment"]
    assert positive_probability(label) == pytest.approx(default_predictor.predict(POSITIVE)[0], abs=1e-4)


@pytest.fixture(scope="module")
def client(app_url, default_predictor):
    """A client of the app; after the module's last test, the app must still answer within its memory."""
    watchdog = Watchdog()
    client = Client(app_url, verbose=False)
    yield client
    assert_still_serving(client, default_predictor)
    peak = watchdog.stop()
    print(f"\n{len(REFUSED)} bad inputs refused with a sentence; peak resident memory {peak:,.0f} MB")
    assert 0 < peak < 4096


def refused(call, match: str) -> str:
    """Run an API call that must be refused with a sentence matching `match`; returns the sentence."""
    with pytest.raises(AppError, match=match) as refusal:
        call()
    message = str(refusal.value)
    assert message and "Something went wrong" not in message and message.strip().lower() != "error"
    REFUSED.append(message)
    return message


# ---------------------------------------------------------------- reviews

def test_a_one_megabyte_review_reads_its_first_tokens(client, default_predictor):
    review = ("The kettle boils fast and I love it. " * 30_000)[:1_000_000]
    shown = call(client, "/predict", review, "default.pt", "0", 4)
    assert "only the first 200" in shown["Summary"]
    assert len(shown[TOKENS]) == 200
    assert positive_probability(shown["Sentiment"]) == pytest.approx(default_predictor.predict(review)[0], abs=1e-4)


@pytest.mark.parametrize("review", [
    "Love it 😀😀 would buy again 👍",
    "とても良い製品です。満足しています。",
    "ممتاز جدا، أنصح به",
    "Broke\x00 after\x07 a\x1b[31m week\u202e, awful",
])
def test_emoji_other_scripts_and_control_characters(client, default_predictor, review):
    shown = call(client, "/predict", review, "default.pt", "0", 4)
    tokens = [item["token"] for item in shown[TOKENS]]
    assert tokens and not any(ch in token for token in tokens for ch in "\x00\x07\x1b")
    assert positive_probability(shown["Sentiment"]) == pytest.approx(default_predictor.predict(review)[0], abs=1e-4)


def test_html_is_read_as_text(client):
    shown = call(client, "/predict", "<script>alert('x')</script> <b>Great</b> value", "default.pt", "0", 4)
    tokens = [item["token"] for item in shown[TOKENS]]
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
    "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(100), "photo.png: expected one of .txt, .bz2, .gz, .csv, .tsv"),
    "noise.txt": (bytes((i * 37 + 11) % 255 + 1 for i in range(4000)), "looks binary .* control characters"),
    "plain.txt.gz": (b"__label__2 great\n__label__1 awful\n", "this .gz file is not gzip-compressed"),
    "gzip.bz2": (gzip.compress(b"__label__2 great\n"), "this .bz2 file is not bzip2-compressed; its bytes are gzip"),
    "quote.csv": (b"label,text\n1,fine\n0,\"bad\n1,good\n", "line 3 opens a quote that never closes"),
}


@pytest.mark.parametrize("name,content,message", [
    ("ragged.vec", b"2 3\ngreat 1 2 3\nkettle 1 2\n", "line 3 has 2 numbers after its word; its header says 3"),
    ("binary.txt", b"2 3\ngreat \x00\x00\x80?\x00\x00\x00@\n", "a binary file; word vectors are read from text"),
    ("vectors.png", b"\x89PNG\r\n", "expected one of .txt, .vec, .gz, .bz2, .zip"),
])
def test_unusable_word_vectors_fail_the_run_with_a_sentence(client, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    try:
        status = call(client, "/train", *train_args(200, 1, vectors=handle_file(str(path))))["Status"]
    except AppError as refusal:  # refused before the run starts
        status = str(refusal)
    assert message in status and "Traceback" not in status
    REFUSED.append(status)


@pytest.mark.parametrize("name", UPLOADS)
def test_unusable_uploads_are_refused_before_a_run_starts(client, default_predictor, tmp_path, name, lab):
    content, message = UPLOADS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")
    assert not lab.jobs.snapshot("training").active
    assert_still_serving(client, default_predictor)


def test_an_upload_over_the_size_limit(client, tmp_path, monkeypatch, lab):
    monkeypatch.setattr(lab, "settings", replace(lab.settings, max_upload_mb=1))
    path = tmp_path / "big.csv"
    path.write_bytes(b"text,label\n" + b"a fine kettle that works,1\n" * 50_000)  # 1.3 MB
    with pytest.raises(AppError, match="larger than the 1 MB upload limit"):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")


def test_a_single_class_upload_fails_the_run_with_a_reason(client, default_predictor, tmp_path):
    path = tmp_path / "only_praise.csv"
    path.write_text("text,label\n" + "".join(f"great kettle number {i},1\n" for i in range(50)))
    status = call(client, "/train", *train_args(100, 1, source="upload", upload=handle_file(str(path))))["Status"]
    assert "Failed" in status and "every review is positive; training needs both classes" in status
    assert_still_serving(client, default_predictor)


def test_public_demo_switches_refuse_uploads_and_training(client, tmp_path, monkeypatch, lab):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngreat,1\nawful,0\nfine,1\n")
    monkeypatch.setattr(lab, "settings", Settings(public=True, allow_uploads=False))
    with pytest.raises(AppError, match="Uploads are off on this server"):
        client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(path))), api_name="/train")
    vectors = tmp_path / "glove.txt"
    vectors.write_text("great 1 2 3\n")
    with pytest.raises(AppError, match="Uploads are off on this server .* so no word vectors file can be used"):
        client.predict(*train_args(100, 1, vectors=handle_file(str(vectors))), api_name="/train")
    wide = tmp_path / "wide.vec"
    wide.write_text("1 300\ngreat " + " ".join(["0.5"] * 300) + "\n")
    monkeypatch.setattr(lab, "settings", Settings(public=True, allow_uploads=True))
    with pytest.raises(AppError, match="wide.vec: vectors of 300 numbers; a public demo's embedding has at most 256"):
        client.predict(*train_args(100, 1, vectors=handle_file(str(wide))), api_name="/train")
    monkeypatch.setattr(lab, "settings", Settings(public=True, allow_training=False))
    with pytest.raises(AppError, match="Training is turned off"):
        client.predict(*train_args(100, 1), api_name="/train")
    assert not lab.jobs.snapshot("training").active


# ---------------------------------------------------------------- hyper-parameters

@pytest.mark.parametrize("name,bad,message", [
    ("hidden_size", "many", "hidden size must be a whole number between 1 and 4096; got 'many'"),
    ("hidden_size", 0, "hidden size must be between"),
    ("hidden_size", -3, "hidden size must be between"),
    ("hidden_size", 10**7, "hidden size must be between"),
    ("lr", 0, "learning rate must be between"),
    ("lr", -0.1, "learning rate must be between"),
    ("batch_size", 10**9, "batch size must be between"),
    ("epochs", 1e300, "epochs must be between"),
    ("dropout", 1.5, "dropout must be between"),
    ("num_layers", 2.5, "whole number"),
    ("limit", 2.5, "row limit must be a whole number"),
    ("limit", "lots", "row limit must be a whole number"),
])
def test_odd_hyper_parameters(client, name, bad, message, lab):
    args = train_args(400, 1)
    args[train_input_index(name)] = bad
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/train")
    assert not lab.jobs.snapshot("training").active


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
        shown = call(Client(url, auth=auth, verbose=False), "/playground", "lstm", 5, 10, 1, 1, 3, True, False)
        assert shown["Shapes"]["data"][0][1] == "(1, 3, 5)"
    finally:
        demo.close()


@pytest.mark.parametrize("cells,distances,bias,steps,message", [
    (["lstm"], [5], None, 100, "forget-gate bias is empty: type a number between -10 and 10"),
    (["lstm"], [5], "x", 100, "forget-gate bias must be a number between"),
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
    with pytest.raises(AppError, match="checkpoints: choose at least one"):
        client.predict("Great", [], api_name="/compare_memory")
    with pytest.raises(AppError, match="not a checkpoint name"):
        client.predict(["../app.py"], api_name="/accuracy_by_length")


# ---------------------------------------------------------------- every endpoint, odd values (issue: hold under abuse)

LONE_SURROGATE_REVIEW = '"Gr\\ud800eat kettle, works well"'  # JSON text: a lone surrogate, as a raw client may send


@pytest.mark.parametrize("args,match", [
    ((123, "default.pt", "0", 4, "when read"), "review must be text; got int 123"),
    (("x" * (MAX_TEXT_CHARS + 1), "default.pt", "0", 4, "when read"), "the limit is"),
    (("fine", "", "0", 4, "when read"), "checkpoint is empty: choose a checkpoint's file name, like default.pt"),
    (("fine", None, "0", 4, "when read"), "checkpoint is empty: choose a"),
    (("fine", 5, "0", 4, "when read"), "is not a checkpoint name"),
    (("fine", "missing.pt", "0", 4, "when read"), "no such checkpoint"),
    (("fine", "default.pt", "layer 0", 4, "when read"), "layer must be one of '0' \\(layer 1\\)"),
    (("fine", "default.pt", "7", 4, "when read"), "layer must be one of"),
    (("fine", "default.pt", ["0"], 4, "when read"), "layer must be text; got list"),
    (("fine", "default.pt", "0", "abc", "when read"), "units to show must be a whole number between 1 and 64; got 'abc'"),
    (("fine", "default.pt", "0", None, "when read"), "units to show is empty: type a whole number between 1 and 64"),
    (("fine", "default.pt", "0", 0, "when read"), "units to show must be between 1 and 64"),
    (("fine", "default.pt", "0", 1e300, "when read"), "units to show must be between 1 and 64"),
    (("fine", "default.pt", "0", 2.5, "when read"), "units to show must be a whole number"),
    (("fine", "default.pt", "0", True, "when read"), "units to show must be a whole number"),
    (("fine", "default.pt", "0", 4, None), "attribution is empty: choose one of when read, on the final prediction"),
    (("fine", "default.pt", "0", 4, "saliency"), "attribution must be one of"),
    (("fine", "default.pt", "0", 4, 3), "attribution must be one of"),
])
def test_predict_refuses_every_odd_value_with_a_sentence(client, args, match):
    refused(lambda: client.predict(*args, api_name="/predict"), match)


@pytest.mark.parametrize("endpoint,args,match", [
    ("/cell_step", ("fine", "default.pt", "0", -1, 0), "token must be between 0 and 4999; got -1"),
    ("/cell_step", ("fine", "default.pt", "0", 3, 0), "token index \\(from 0; this review has 1 tokens\\) must be between"),
    ("/cell_step", ("fine", "default.pt", "0", "x", 0), "token must be a whole number"),
    ("/cell_step", ("fine", "default.pt", "0", 0, None), "unit is empty: type a whole number"),
    ("/cell_step", ("fine", "default.pt", "0", 0, 500), "unit index .* must be between 0 and 191"),
    ("/cell_step", ("fine", "default.pt", "9", 0, 0), "layer must be one of"),
    ("/read_review", ("", "default.pt"), "The review is empty"),
    ("/read_review", ("fine", "../app.py"), "not a checkpoint name"),
    ("/checkpoint_layers", (None,), "checkpoint is empty"),
    ("/checkpoint_layers", ("missing.pt",), "no such checkpoint"),
    ("/playground", ("transformer", 5, 10, 1, 1, 3, True, False), "cell type must be one of lstm, gru, rnn"),
    ("/playground", (None, 5, 10, 1, 1, 3, True, False), "cell type is empty: choose one of"),
    ("/playground", ("lstm", "abc", 10, 1, 1, 3, True, False), "input size must be a whole number"),
    ("/playground", ("lstm", None, 10, 1, 1, 3, True, False), "input size is empty"),
    ("/playground", ("lstm", 4096, 4096, 8, 1, 3, True, True), "would need [\\d,]+ weights; the playground allows"),
    ("/playground", ("lstm", 4096, 4096, 8, 1, 3, True, False), "would need [\\d,]+ weights"),
    ("/playground", ("lstm", 512, 512, 2, 1024, 2000, True, False), "would need [\\d,]+ (multiply-adds|activations)"),
    ("/playground", ("lstm", 5, 10, 1, 1, 3, "yes", False), "batch_first must be true or false; got 'yes'"),
    ("/compare_memory", ("fine", "default.pt"), "checkpoints must be a list, each a checkpoint's file name"),
    ("/compare_memory", ("fine", ["../x"]), "not a checkpoint name"),
    ("/memory_experiment", (["transformer"], [5], 1.0, 10), "cell type must be one of lstm, gru, rnn"),
    ("/memory_experiment", (["lstm"], [0], 1.0, 10), "distance must be between 1 and 100"),
    ("/memory_experiment", (["lstm"], ["far"], 1.0, 10), "distance must be a whole number"),
    ("/memory_experiment", (["lstm"], [5], 1.0, 1e9), "steps per model must be between 1 and 5000"),
    ("/memory_experiment", ("lstm", [5], 1.0, 10), "cell types must be a list, each one of lstm, gru, rnn"),
    ("/memory_experiment", (["lstm"] * 400, [5], 1.0, 10), "cell types: choose at most 3; got 400"),
    ("/memory_experiment", (["lstm"], list(range(1, 12)), 1.0, 10), "distances: choose at most 10; got 11"),
    ("/accuracy_by_length", (None,), "checkpoints: choose at least one"),
    ("/preset", ("nope",), "preset must be one of reference, quick, lab, lstm, gru, rnn; got 'nope'"),
    ("/preset", (None,), "preset is empty: choose one of"),
])
def test_other_endpoints_refuse_odd_values_with_a_sentence(client, endpoint, args, match):
    refused(lambda: client.predict(*args, api_name=endpoint), match)


@pytest.mark.parametrize("name,bad,match", [
    ("cell", "transformer", "cell type must be one of"),
    ("readout", "max", "readout must be one of last, pool"),
    ("schedule", "zigzag", "schedule must be one of"),
    ("device", "tpu", "device must be"),
    ("precision", "int8", "precision must be one of"),
    ("pretrain_epochs", 1000, "pre-training epochs must be between"),
    ("sentences", 11, "sentences per review must be between 0 and 10"),
    ("sentences", 1.5, "sentences per review must be a whole number"),
    ("forget_bias", "x", "forget-gate bias at start must be a number"),
    ("max_len", 0, "tokens per review must be between"),
    ("bidirectional", "maybe", "bidirectional must be true or false; got 'maybe'"),
    ("titles", 1, "train on titles too must be true or false"),
    ("epochs", None, "epochs is empty: type a whole number"),
])
def test_train_refuses_odd_settings_with_a_sentence(client, name, bad, match):
    args = train_args(400, 1)
    args[train_input_index(name)] = bad
    refused(lambda: client.predict(*args, api_name="/train"), match)
    args = train_args(400, 1)
    args[train_input_index("source")] = "ftp"
    refused(lambda: client.predict(*args, api_name="/train"), r"data must be one of bundled, bundled\+more, upload")


def _raw_call(app_url: str, endpoint: str, data_json: str) -> str:
    """POST raw JSON to an endpoint (what gradio_client cannot send: NaN, a lone surrogate) and read the outcome."""
    import httpx

    with httpx.Client(base_url=app_url, timeout=60) as http:
        event = http.post(f"gradio_api/call{endpoint}", content=f'{{"data": {data_json}}}',
                          headers={"content-type": "application/json"}).json()["event_id"]
        return http.get(f"gradio_api/call{endpoint}/{event}").text


def test_what_only_a_raw_client_can_send_nan_and_a_lone_surrogate(app_url, client):
    answer = _raw_call(app_url, "/predict", '["Fine kettle", "default.pt", "0", NaN, "when read"]')
    assert "event: error" in answer and "units to show must be a whole number between 1 and 64; got nan" in answer
    answer = _raw_call(app_url, "/predict", f'[{LONE_SURROGATE_REVIEW}, "default.pt", "0", 4, "when read"]')
    assert "event: complete" in answer  # read with U+FFFD in its place, figures and all
    assert "\\ufffd" in answer or "\ufffd" in answer


def test_a_megabyte_token_comes_back_shortened(client):
    word = "a" * 1_000_000
    shown = call(client, "/predict", f"Great kettle {word} works", "default.pt", "0", 4)
    tokens = [item["token"] for item in shown[TOKENS]]
    assert max(len(t) for t in tokens) <= 24 and any(t.endswith("…") for t in tokens)
    assert len(shown["Summary"]) < 5000 and all(len(json.dumps(answer)) < 200_000 for answer in shown.values())


def _gzip(path, lines) -> None:
    with gzip.open(path, "wb", compresslevel=9) as f:
        for line in lines:
            f.write(line)


@pytest.mark.slow
def test_compression_bombs_are_refused_while_reading_in_bounded_pieces(client, tmp_path):
    one_line = tmp_path / "one_line.txt.gz"  # a few hundred kB that unpack to one 200 MB line
    _gzip(one_line, [b"__label__1 " + b"a" * 2**20 for _ in range(200)])
    refused(lambda: client.predict(*train_args(2000, 1, source="upload", upload=handle_file(str(one_line))),
                                   api_name="/train"), "line 1 is longer than 1,000,000 characters")
    # Short lines, a thousand times the file's size: the first lines are fine, so the run starts; its reading stops
    # at 100 times the file's size, in bounded memory, and the run fails saying why.
    many_lines = tmp_path / "many_lines.txt.gz"
    _gzip(many_lines, [b"__label__1 the same short review again\n" * 50_000 for _ in range(100)])
    status = call(client, "/train", *train_args(0, 1, source="upload", upload=handle_file(str(many_lines))))["Status"]
    assert "Failed" in status and "unpacks to more than 100 times its size" in status


@pytest.mark.parametrize("content,match", [
    (b"__label__2 great\n__label__1 awful\n__label__2 fine\n", "3 usable reviews; training needs at least 100"),
])
def test_too_few_reviews_to_split_are_refused(client, tmp_path, content, match):
    path = tmp_path / "three.txt"
    path.write_bytes(content)
    status = call(client, "/train", *train_args(0, 1, source="upload", upload=handle_file(str(path))))["Status"]
    assert "Failed" in status and match.split(";")[1].strip() in status


def test_a_public_demo_refuses_uploads_at_the_http_level_and_says_it_is_public(free_port, monkeypatch, tmp_path):
    import httpx

    settings = Settings.from_env({"SPACE_ID": "someone/lstm-lab"})
    demo = app.build_demo(Lab(settings=settings))
    demo.launch(prevent_thread_lock=True, server_port=free_port, quiet=True, max_file_size=app.upload_limit(settings))
    try:
        url = f"http://127.0.0.1:{free_port}/"
        response = httpx.post(url + "gradio_api/upload", files={"files": ("reviews.txt", b"__label__2 great\n")})
        assert response.status_code == 413
        assert "Public demo" in json.dumps(httpx.get(url + "config").json())  # the page says so
        upload = tmp_path / "reviews.txt"
        upload.write_text("__label__2 great\n")
        # gradio_client reads the limit from the app and refuses before sending, in its own words (a raw POST got
        # the 413 above); what the server turns off, and why, an API client reads from /restrictions.
        client = Client(url, verbose=False)
        with pytest.raises(ValueError, match="exceeds the maximum file size of 0 bytes"):
            client.predict(*train_args(100, 1, source="upload", upload=handle_file(str(upload))), api_name="/train")
        said = call(client, "/restrictions")["Restrictions"]
        assert "Uploads are off: a public demo takes no files from strangers" in said
        assert "row limit at most 5,000" in said and "300 s of wall clock" in said
    finally:
        demo.close()
