"""The app launched in-process and driven through its public API with gradio_client."""
from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from app_api import plot_traces, positive_probability, rows, train_args, typed_array, value
from sentiment.checkpoint import CHECKPOINT_DIR, DEFAULT_CHECKPOINT, load_checkpoint, load_predictor
from sentiment.data import BUNDLED_SAMPLE, load_reviews
from sentiment.model import READOUTS


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.mark.parametrize("seq_len,output", [(1, "(1, 1, 10)"), (3, "(1, 3, 10)")])
def test_playground_reference_example(client, seq_len, output):
    code, shapes, slices, parameters, total, diagram = client.predict("lstm", 5, 10, 1, 1, seq_len, True, False,
                                                                      api_name="/playground")
    table = {row[0]: row[1] for row in rows(shapes)}
    assert table["input x"] == f"(1, {seq_len}, 5)"
    assert table["output"] == output
    assert table["h_n"] == table["c_n"] == table["h0, c0"] == "(1, 1, 10)"
    assert "output[:, -1, :]" in value(slices) and "(1, 10)" in value(slices)
    assert [row[2] for row in rows(parameters)] == [200, 400, 40, 40]
    assert "4 gates (i, f, g, o)" in value(total) and "680 parameters" in value(total)


@pytest.mark.parametrize("cell,gates,counts,states", [("gru", "3 gates (r, z, n)", [150, 300, 30, 30], ["h0"]),
                                                      ("rnn", "no gates", [50, 100, 10, 10], ["h0"])])
def test_playground_gru_and_rnn_stack_three_gates_and_one(client, cell, gates, counts, states):
    code, shapes, _, parameters, total, diagram = client.predict(cell, 5, 10, 1, 1, 3, True, False, api_name="/playground")
    assert [row[2] for row in rows(parameters)] == counts and gates in value(total)
    assert [row[0] for row in rows(shapes)] == ["input x", *states, "output", "h_n"]  # no cell state
    assert f"nn.{cell.upper()}(" in value(code)
    labels = [a["text"] for a in json.loads(value(diagram)["plot"])["layout"]["annotations"]]
    assert "h" in labels and "h, c" not in labels


def test_playground_diagram_labels_the_flows_between_steps_and_layers(client):
    diagram = client.predict("lstm", 5, 10, 2, 1, 3, True, False, api_name="/playground")[5]
    labels = [a["text"] for a in json.loads(value(diagram)["plot"])["layout"]["annotations"]]
    assert labels.count("h, c") == 2 * 2  # two layers, two steps after the first
    assert {"h1", "h2", "h3"} <= set(labels)  # the layer below's h at each step feeds the layer above


def test_playground_refuses_nonsense_sizes(client):
    for bad in ((0, 10, 1, 1, 3), (5, -1, 1, 1, 3), (5, 10, 1, 1, 10**7), (5, 10, 2.5, 1, 3)):
        with pytest.raises(AppError, match="must be"):
            client.predict("lstm", *bad, True, False, api_name="/playground")


def test_predict_with_the_default_checkpoint(client):
    positive = client.predict(app.EXAMPLES[0], "default.pt", "0", 8, api_name="/predict")
    negative = client.predict(app.EXAMPLES[1], "default.pt", "0", 8, api_name="/predict")
    assert value(positive[0])["label"] == "positive" and value(negative[0])["label"] == "negative"
    assert "when read" in value(positive[1]) and "moment of reading" in value(positive[1])
    assert READOUTS[load_checkpoint(DEFAULT_CHECKPOINT).model_config.readout] in value(positive[1])
    tokens = [item["token"] for item in value(positive[2])]
    assert tokens[:3] == ["best", "purchase", "this"]
    final = client.predict(app.EXAMPLES[2], "default.pt", "0", 8, "on the final prediction", api_name="/predict")
    assert "re-scoring the review once per token" in value(final[1])


@pytest.mark.parametrize("review,message", [("", "empty"), ("   \n\t", "empty")])
def test_predict_refuses_empty_reviews(client, review, message):
    with pytest.raises(AppError, match=message):
        client.predict(review, "default.pt", "0", 8, api_name="/predict")


def test_predict_refuses_paths_as_checkpoint_names(client):
    with pytest.raises(AppError, match="not a checkpoint name"):
        client.predict("fine", "../app.py", "0", 8, api_name="/predict")


def test_training_streams_progress_and_its_checkpoint_predicts(client):
    # 2,000 reviews for 3 epochs: long enough (~90 steps) that progress streams even when the corpus is cached.
    job = client.submit(*train_args(limit=2000, epochs=3), api_name="/train")
    statuses = [value(update[0]) for update in job]
    assert statuses[0].startswith("**Preparing**") and statuses[-1].startswith("**Finished**")
    assert any("Training" in s and "reviews/s" in s for s in statuses)
    steps = int(re.search(r"after ([\d,]+) steps", statuses[-1])[1].replace(",", ""))
    loss_curve = plot_traces(job.outputs()[-1][2])[0]
    assert typed_array(loss_curve["x"]).tolist() == list(range(1, steps + 1))  # every step is on the curve
    final = job.outputs()[-1]
    assert "Finished" in value(final[0]) and "Test report" in value(final[3])
    saved = CHECKPOINT_DIR / value(final[3]).split("`")[1]
    try:
        assert load_checkpoint(saved).data["reviews"] == 2000
        result = client.predict("Works great, love it", saved.name, "0", 4, api_name="/predict")
        expected = load_predictor(saved, device="cpu").predict("Works great, love it")[0]
        assert positive_probability(result[0]) == pytest.approx(expected, abs=1e-5)  # the new checkpoint answers
    finally:
        saved.unlink(missing_ok=True)


def test_one_run_at_a_time_while_eight_users_predict(client, app_url):
    saved_before = {path: path.read_bytes() for path in CHECKPOINT_DIR.glob("*.pt")}
    reviews = load_reviews(BUNDLED_SAMPLE, limit=24)[0]
    expected = load_predictor(DEFAULT_CHECKPOINT, device="cpu").predict(reviews)
    job = client.submit(*train_args(limit=4000, epochs=5), api_name="/train")
    deadline = time.time() + 60
    while time.time() < deadline:
        state = app.runner.snapshot()
        if state.active and state.step and state.step.step >= 2:
            break
        time.sleep(0.2)

    def user(k: int) -> list[float]:  # each user its own client, three real reviews each
        own = Client(app_url, verbose=False)
        return [positive_probability(own.predict(reviews[i], "default.pt", "0", 4, api_name="/predict")[0])
                for i in range(3 * k, 3 * k + 3)]

    with ThreadPoolExecutor(8) as pool:
        answers = [p for user_answers in pool.map(user, range(8)) for p in user_answers]
    assert app.runner.snapshot().active, "the run should still be streaming while the users predict"
    assert answers == pytest.approx(expected, abs=1e-4)

    with pytest.raises(AppError, match="already in progress"):
        client.predict(*train_args(limit=400, epochs=1), api_name="/train")
    stop = client.predict("", api_name="/stop_training")
    assert "Stopping" in value(stop)
    final = job.result()
    assert "Stopped" in value(final[0])
    saved = CHECKPOINT_DIR / value(final[3]).split("`")[1]
    try:
        checkpoint = load_checkpoint(saved)
        assert checkpoint.metrics["steps"] < 5 * 50 and "test" in checkpoint.metrics
        for path, content in saved_before.items():  # every checkpoint saved before the run is untouched
            assert path.read_bytes() == content and load_checkpoint(path)
    finally:
        saved.unlink(missing_ok=True)


def _figure_data(plot) -> list[dict]:
    return json.loads(value(plot)["plot"])["data"]


def test_memory_tab_compares_the_shipped_cell_types(client):
    assert all((CHECKPOINT_DIR / name).is_file() for name in app.MEMORY_CHECKPOINTS)
    gradient, trajectories, kept, table = client.predict(app.MEMORY_EXAMPLE, app.MEMORY_CHECKPOINTS,
                                                         api_name="/compare_memory")
    labels = ["rnn.pt (RNN)", "gru.pt (GRU)", "default.pt (LSTM)"]
    assert [trace["name"] for trace in _figure_data(gradient)] == labels
    assert [trace["name"] for trace in _figure_data(trajectories)] == labels
    rows = [line for line in value(table).splitlines() if line.startswith("| ") and "checkpoint" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == labels
    # what the LSTM keeps: its forget gate and cell state
    assert [trace["type"] for trace in _figure_data(kept)] == ["heatmap", "heatmap"]
    assert "forget" in _figure_data(kept)[0]["hovertemplate"] and "cell_state" in _figure_data(kept)[1]["hovertemplate"]


def test_memory_experiment_streams_and_accuracy_by_length(client):
    job = client.submit(["rnn", "lstm"], [5], 1.0, 300, api_name="/memory_experiment")
    updates = [value(update[1]) for update in job]
    assert "1 of 2 models trained" in updates[0] and "2 of 2 models trained" in updates[-1]
    lstm_row = next(line for line in updates[-1].splitlines() if line.startswith("| LSTM | 5 |"))
    assert float(lstm_row.split(" | ")[2].rstrip("%")) >= 95
    with pytest.raises(AppError, match="at least one"):
        client.predict([], [5], 1.0, 300, api_name="/memory_experiment")
    bars = _figure_data(client.predict(["default.pt"], api_name="/accuracy_by_length"))
    assert bars[0]["x"] == ["1–25", "26–50", "51–100", "101–150", "> 150"] and sum(bars[0]["customdata"]) == 1797


@pytest.mark.parametrize("name,module,gates", [("gru.pt", "nn.GRU", ["reset gate r", "update gate z", "candidate n"]),
                                               ("rnn.pt", "nn.RNN", [])])
def test_predict_tab_shows_gru_gates_and_rnn_states(client, name, module, gates):
    label, summary, _, _, _, gate_plot, state_plot, _ = client.predict(app.EXAMPLES[1], name, "0", 6,
                                                                       api_name="/predict")
    assert value(label)["label"] in ("positive", "negative") and f"reproduces `{module}`" in value(summary)
    titles = [a["text"] for a in json.loads(value(gate_plot)["plot"])["layout"]["annotations"]]
    assert titles == gates if gates else "has no gates" in titles[0]
    assert len(_figure_data(state_plot)) == 1  # hidden state only: neither has a separate cell state
