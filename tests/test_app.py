"""The app launched in-process and driven through its public API with gradio_client."""
from __future__ import annotations

import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from sentiment.checkpoint import CHECKPOINT_DIR, load_checkpoint


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def _value(update):
    return update["value"] if isinstance(update, dict) and "value" in update else update


def _rows(dataframe):
    return _value(dataframe)["data"]


@pytest.mark.parametrize("seq_len,output", [(1, "(1, 1, 10)"), (3, "(1, 3, 10)")])
def test_playground_reference_example(client, seq_len, output):
    code, shapes, slices, parameters, total, diagram = client.predict(5, 10, 1, 1, seq_len, True, False, api_name="/playground")
    table = {row[0]: row[1] for row in _rows(shapes)}
    assert table["input x"] == f"(1, {seq_len}, 5)"
    assert table["output"] == output
    assert table["h_n"] == table["c_n"] == table["h0, c0"] == "(1, 1, 10)"
    assert "output[:, -1, :]" in _value(slices) and "(1, 10)" in _value(slices)
    assert [row[2] for row in _rows(parameters)] == [200, 400, 40, 40]


def test_playground_refuses_nonsense_sizes(client):
    for bad in ((0, 10, 1, 1, 3), (5, -1, 1, 1, 3), (5, 10, 1, 1, 10**7)):
        with pytest.raises(AppError, match="must be"):
            client.predict(*bad, True, False, api_name="/playground")


def test_predict_with_the_default_checkpoint(client):
    positive = client.predict(app.EXAMPLES[0], "default.pt", "layer 1", 8, api_name="/predict")
    negative = client.predict(app.EXAMPLES[1], "default.pt", "layer 1", 8, api_name="/predict")
    assert _value(positive[0])["label"] == "positive" and _value(negative[0])["label"] == "negative"
    assert "when read" in _value(positive[1]) and "moment of reading" in _value(positive[1])
    tokens = [item["token"] for item in _value(positive[2])]
    assert tokens[:3] == ["best", "purchase", "this"]
    final = client.predict(app.EXAMPLES[2], "default.pt", "layer 1", 8, "on the final prediction", api_name="/predict")
    assert "re-scoring the review once per token" in _value(final[1])


@pytest.mark.parametrize("review,message", [("", "empty"), ("   \n\t", "empty")])
def test_predict_refuses_empty_reviews(client, review, message):
    with pytest.raises(AppError, match=message):
        client.predict(review, "default.pt", "layer 1", 8, api_name="/predict")


def test_predict_refuses_paths_as_checkpoint_names(client):
    with pytest.raises(AppError, match="not a checkpoint name"):
        client.predict("fine", "../app.py", "layer 1", 8, api_name="/predict")


def _quick(limit: int, epochs: int):
    values = list(app.apply_preset("quick"))[:-1]
    names = [name for _, name, _ in app.HYPER_PARAMETERS]
    values[names.index("epochs")] = epochs
    return ["bundled", None, limit, "api-test", "", *values]


def test_training_streams_progress_and_its_checkpoint_predicts(client):
    job = client.submit(*_quick(limit=400, epochs=2), api_name="/train")
    statuses = [_value(update[0]) for update in job]
    assert any("Training" in s and "reviews/s" in s for s in statuses)
    final = job.outputs()[-1]
    assert "Finished" in _value(final[0]) and "Test report" in _value(final[2])
    saved = CHECKPOINT_DIR / _value(final[2]).split("`")[1]
    try:
        assert load_checkpoint(saved).data["reviews"] == 400
        result = client.predict("Works great, love it", saved.name, "layer 1", 4, api_name="/predict")
        assert _value(result[0])["label"] in ("positive", "negative")
    finally:
        saved.unlink(missing_ok=True)


def test_stop_and_one_run_at_a_time(client):
    job = client.submit(*_quick(limit=4000, epochs=5), api_name="/train")
    deadline = time.time() + 60
    while time.time() < deadline:
        state = app.runner.snapshot()
        if state.active and state.step and state.step.step >= 2:
            break
        time.sleep(0.2)
    with pytest.raises(AppError, match="already in progress"):
        client.predict(*_quick(limit=400, epochs=1), api_name="/train")
    stop = client.predict("", api_name="/stop_training")
    assert "Stopping" in _value(stop)
    final = job.result()
    assert "Stopped" in _value(final[0])
    saved = CHECKPOINT_DIR / _value(final[2]).split("`")[1]
    try:
        checkpoint = load_checkpoint(saved)
        assert checkpoint.metrics["steps"] < 5 * 50 and "test" in checkpoint.metrics
    finally:
        saved.unlink(missing_ok=True)


def test_odd_hyper_parameters_are_clear_errors(client):
    args = _quick(limit=400, epochs=1)
    hidden = 5 + [name for _, name, _ in app.HYPER_PARAMETERS].index("hidden_size")
    for bad, message in ((0, "hidden_size must be between"), (-3, "hidden_size must be between"),
                         (10**7, "hidden_size must be between"), (2.5, "whole number")):
        args[hidden] = bad
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/train")
    assert not app.runner.snapshot().active
