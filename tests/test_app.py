"""The app launched in-process and driven through its public API with gradio_client."""
from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
import torch
from app_api import (
    TRAIN_INPUTS,
    call,
    named,
    plot_traces,
    positive_probability,
    train_args,
    train_input_index,
    typed_array,
)
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from sentiment.data.files import load_reviews
from sentiment.data.preprocessing import PREPROCESSING_VERSION, encode_review
from sentiment.data.sets import BUNDLED_SAMPLE
from sentiment.explain.review import explain
from sentiment.memory.experiment import MEMORY_CHECKPOINTS, MEMORY_EXAMPLE
from sentiment.model.checkpoint import (
    CHECKPOINT_DIR,
    DEFAULT_CHECKPOINT,
    load_checkpoint,
    save_checkpoint,
)
from sentiment.model.network import READOUTS
from sentiment.model.predictor import load_predictor
from sentiment.model.word_vectors import export
from sentiment.ui import boundary, train
from sentiment.ui.jobs import log
from sentiment.ui.lab import Lab, Refusals
from sentiment.ui.predict import EXAMPLES, predict_summary


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


@pytest.mark.parametrize("seq_len,output", [(1, "(1, 1, 10)"), (3, "(1, 3, 10)")])
def test_playground_reference_example(client, seq_len, output):
    shown = call(client, "/playground", "lstm", 5, 10, 1, 1, seq_len, True, False)
    table = {row[0]: row[1] for row in shown["Shapes"]["data"]}
    assert table["input x"] == f"(1, {seq_len}, 5)"
    assert table["output"] == output
    assert table["h_n"] == table["c_n"] == table["h0, c0"] == "(1, 1, 10)"
    slices = shown["Many-to-one and many-to-many"]
    assert "output[:, -1, :]" in slices and "(1, 10)" in slices
    assert [row[2] for row in shown["Parameters"]["data"]] == [200, 400, 40, 40]
    assert "4 gates (i, f, g, o)" in shown["Parameter total"] and "680 parameters" in shown["Parameter total"]


@pytest.mark.parametrize("cell,gates,counts,states", [("gru", "3 gates (r, z, n)", [150, 300, 30, 30], ["h0"]),
                                                      ("rnn", "no gates", [50, 100, 10, 10], ["h0"])])
def test_playground_gru_and_rnn_stack_three_gates_and_one(client, cell, gates, counts, states):
    shown = call(client, "/playground", cell, 5, 10, 1, 1, 3, True, False)
    assert [row[2] for row in shown["Parameters"]["data"]] == counts and gates in shown["Parameter total"]
    assert [row[0] for row in shown["Shapes"]["data"]] == ["input x", *states, "output", "h_n"]  # no cell state
    assert f"nn.{cell.upper()}(" in shown["Equivalent PyTorch"]
    labels = [a["text"] for a in json.loads(shown["Unrolled"]["plot"])["layout"]["annotations"]]
    assert "h" in labels and "h, c" not in labels


def test_playground_diagram_labels_the_flows_between_steps_and_layers(client):
    diagram = call(client, "/playground", "lstm", 5, 10, 2, 1, 3, True, False)["Unrolled"]
    labels = [a["text"] for a in json.loads(diagram["plot"])["layout"]["annotations"]]
    assert labels.count("h, c") == 2 * 2  # two layers, two steps after the first
    assert {"h1", "h2", "h3"} <= set(labels)  # the layer below's h at each step feeds the layer above


def test_playground_refuses_nonsense_sizes(client):
    for bad in ((0, 10, 1, 1, 3), (5, -1, 1, 1, 3), (5, 10, 1, 1, 10**7), (5, 10, 2.5, 1, 3)):
        with pytest.raises(AppError, match="must be"):
            client.predict("lstm", *bad, True, False, api_name="/playground")


def test_predict_with_the_default_checkpoint(client):
    positive = call(client, "/predict", EXAMPLES[0], "default.pt", "0", 8)
    negative = call(client, "/predict", EXAMPLES[1], "default.pt", "0", 8)
    assert positive["Sentiment"]["label"] == "positive" and negative["Sentiment"]["label"] == "negative"
    summary = positive["Summary"]
    assert "when read" in summary and "moment of reading" in summary
    assert READOUTS[load_checkpoint(DEFAULT_CHECKPOINT).model_config.readout] in summary
    assert "preprocessing version" not in summary  # no note for a checkpoint read as it was trained
    tokens = [item["token"] for item in positive["What each token did (click a token to step inside the cell with it)"]]
    assert tokens[:3] == ["best", "purchase", "this"]
    final = call(client, "/predict", EXAMPLES[2], "default.pt", "0", 8, "on the final prediction")
    assert "re-scoring the review once per token" in final["Summary"]
    # The examples' negated praise and negated complaint, read as a person reads them.
    assert EXAMPLES[2].startswith("Not bad") and final["Sentiment"]["label"] == "positive"
    complaint = call(client, "/predict", EXAMPLES[3], "default.pt", "0", 8)
    assert EXAMPLES[3].startswith("Not good") and complaint["Sentiment"]["label"] == "negative"


def test_a_checkpoint_trained_under_another_preprocessing_version_says_so(trained, tmp_path):
    checkpoint = load_checkpoint(trained[0])
    assert checkpoint.data["preprocessing_version"] == PREPROCESSING_VERSION and not checkpoint.preprocessing_note
    checkpoint.data["preprocessing_version"] = PREPROCESSING_VERSION - 1
    older = load_predictor(save_checkpoint(tmp_path / "older.pt", checkpoint), "cpu")
    note = older.checkpoint.preprocessing_note
    assert f"version {PREPROCESSING_VERSION - 1};" in note and f"version {PREPROCESSING_VERSION}," in note
    assert note in predict_summary(older, explain(older, "Not bad at all."))


@pytest.mark.parametrize("review,message", [("", "empty"), ("   \n\t", "empty")])
def test_predict_refuses_empty_reviews(client, review, message):
    with pytest.raises(AppError, match=message):
        client.predict(review, "default.pt", "0", 8, api_name="/predict")


def test_predict_refuses_paths_as_checkpoint_names(client):
    with pytest.raises(AppError, match="not a checkpoint name"):
        client.predict("fine", "../app.py", "0", 8, api_name="/predict")


@pytest.mark.slow
def test_training_streams_progress_and_its_checkpoint_predicts(client):
    # 2,000 reviews for 3 epochs: long enough (~90 steps) that progress streams even when the corpus is cached.
    job = client.submit(*train_args(limit=2000, epochs=3), api_name="/train")
    updates = [named(client, "/train", update) for update in job]
    statuses = [update["Status"] for update in updates]
    assert statuses[0].startswith("**Preparing**") and statuses[-1].startswith("**Finished**")
    assert any("Training" in s and "reviews/s" in s for s in statuses)
    final = updates[-1]
    saved = CHECKPOINT_DIR / Path(final["Checkpoint (download)"]).name
    try:
        checkpoint = load_checkpoint(saved)
        assert checkpoint.data["reviews"] == 2000 and "Test report" in final["Test report"]
        loss_curve = plot_traces(final["Loss and accuracy"])[0]
        steps = checkpoint.metrics["steps"]  # every step is on the curve
        assert steps > 50 and typed_array(loss_curve["x"]).tolist() == list(range(1, steps + 1))
        result = call(client, "/predict", "Works great, love it", saved.name, "0", 4)
        expected = load_predictor(saved, device="cpu").predict("Works great, love it")[0]
        assert positive_probability(result["Sentiment"]) == pytest.approx(expected, abs=1e-5)  # the new one answers
    finally:
        saved.unlink(missing_ok=True)


@pytest.mark.slow
def test_training_on_the_sample_with_more_reviews_reads_and_reports_every_source(client):
    from sentiment.data.sets import BUNDLED_DATA, source_name

    final = call(client, "/train", *train_args(limit=700, epochs=1, source="bundled+more"))
    saved = CHECKPOINT_DIR / Path(final["Checkpoint (download)"]).name
    try:
        checkpoint = load_checkpoint(saved)
        names = [source_name(path) for path in BUNDLED_DATA["sample+more"]]
        assert list(checkpoint.data["sources"]) == names and sum(checkpoint.data["sources"].values()) == 700
        assert list(checkpoint.metrics["test_by_source"]) == names  # every source has held-out reviews
        assert [row[0] for row in final["Test report by source"]["data"]] == names  # a row each in the Train tab
    finally:
        saved.unlink(missing_ok=True)


@pytest.mark.slow
def test_training_from_uploaded_word_vectors_says_what_it_read_and_keeps_them_frozen(client, trained, tmp_path):
    exported = tmp_path / "small.vec"
    export(trained[0], exported)
    args = train_args(limit=600, epochs=1, vectors=handle_file(str(exported)), name="vectors-test")
    args[train_input_index("freeze_embedding")] = True
    final = call(client, "/train", *args)
    saved = CHECKPOINT_DIR / Path(final["Checkpoint (download)"]).name
    try:
        checkpoint = load_checkpoint(saved)
        assert checkpoint.model_config.embedding_dim == 48 and checkpoint.data["vectors"]["file"] == "small.vec"
        assert "**Read:** " in final["Test report"] and "word vectors small.vec" in final["Test report"]
        assert checkpoint.train_config["freeze_embedding"] is True
    finally:
        saved.unlink(missing_ok=True)


@pytest.mark.slow
def test_one_run_at_a_time_while_eight_users_predict(client, app_url, lab):
    saved_before = {path: path.read_bytes() for path in CHECKPOINT_DIR.glob("*.pt")}
    reviews = load_reviews(BUNDLED_SAMPLE, limit=24)[0]
    expected = load_predictor(DEFAULT_CHECKPOINT, device="cpu").predict(reviews)
    job = client.submit(*train_args(limit=4000, epochs=5), api_name="/train")
    deadline = time.time() + 60
    while time.time() < deadline:
        run = lab.jobs.snapshot("training")
        if run.active and run.progress.step and run.progress.step.step >= 2:
            break
        time.sleep(0.2)

    def user(k: int) -> list[float]:  # each user its own client, three real reviews each
        own = Client(app_url, verbose=False)
        return [positive_probability(call(own, "/predict", reviews[i], "default.pt", "0", 4)["Sentiment"])
                for i in range(3 * k, 3 * k + 3)]

    with ThreadPoolExecutor(8) as pool:
        answers = [p for user_answers in pool.map(user, range(8)) for p in user_answers]
    assert lab.jobs.snapshot("training").active, "the run should still be streaming while the users predict"
    assert answers == pytest.approx(expected, abs=1e-4)

    with pytest.raises(AppError, match="already in progress"):
        client.predict(*train_args(limit=400, epochs=1), api_name="/train")
    # One job at a time, whatever its kind: a search and the memory experiment wait for the run too.
    with pytest.raises(AppError, match="A training run is already in progress"):
        client.predict(1, 0, 1, 400, "median", "", api_name="/search")
    with pytest.raises(AppError, match="A training run is already in progress"):
        client.predict(["lstm"], [5], 1.0, 10, api_name="/memory_experiment")
    assert "Stopping" in call(client, "/stop_training", "")["Status"]
    final = named(client, "/train", job.result())
    assert "Stopped" in final["Status"]
    saved = CHECKPOINT_DIR / Path(final["Checkpoint (download)"]).name
    try:
        checkpoint = load_checkpoint(saved)
        assert checkpoint.metrics["steps"] < 5 * 50 and "test" in checkpoint.metrics
        for path, content in saved_before.items():  # every checkpoint saved before the run is untouched
            assert path.read_bytes() == content and load_checkpoint(path)
    finally:
        saved.unlink(missing_ok=True)


def _figure_data(plot) -> list[dict]:
    return json.loads(plot["plot"])["data"]


def test_memory_tab_compares_the_shipped_cell_types(client):
    assert all((CHECKPOINT_DIR / name).is_file() for name in MEMORY_CHECKPOINTS)
    compared = call(client, "/compare_memory", MEMORY_EXAMPLE, list(MEMORY_CHECKPOINTS))
    labels = ["rnn.pt (RNN)", "gru.pt (GRU)", "lstm.pt (LSTM)"]
    assert [trace["name"] for trace in _figure_data(compared["Gradient flow"])] == labels
    assert [trace["name"] for trace in _figure_data(compared["Prediction after each token"])] == labels
    table = compared["Comparison"]
    assert [row[0] for row in table["data"]] == labels and table["headers"][0] == "checkpoint"
    assert all(0 <= row[1] <= 1 for row in table["data"])  # P(positive)
    kept = compared["Forget gate and cell state"]
    # what the LSTM keeps: its forget gate and cell state
    assert [trace["type"] for trace in _figure_data(kept)] == ["heatmap", "heatmap"]
    assert "forget" in _figure_data(kept)[0]["hovertemplate"] and "cell_state" in _figure_data(kept)[1]["hovertemplate"]


def test_the_memory_tab_opens_with_the_examples_comparison_drawn(client):
    opened = {c["props"].get("label"): c["props"].get("value") for c in client.config["components"]
              if c.get("type") == "plot"}
    compared = call(client, "/compare_memory", MEMORY_EXAMPLE, list(MEMORY_CHECKPOINTS))
    for label in ["Gradient flow", "Prediction after each token", "Forget gate and cell state"]:
        assert opened[label] is not None and _figure_data(opened[label]) == _figure_data(compared[label]), label


@pytest.mark.slow
def test_memory_experiment_streams_and_accuracy_by_length(client):
    job = client.submit(["rnn", "lstm"], [5], 1.0, 300, api_name="/memory_experiment")
    updates = [named(client, "/memory_experiment", update) for update in job]
    counts = [update["Experiment progress"] for update in updates]
    assert "0 of 2 models trained" in counts[0] and any("1 of 2 models trained" in count for count in counts)
    assert "2 of 2 models trained" in counts[-1]
    results = {(row[0], row[1]): row[2] for row in updates[-1]["Experiment results"]["data"]}
    assert set(results) == {("RNN", 5), ("LSTM", 5)} and results["LSTM", 5] >= 0.95
    with pytest.raises(AppError, match="at least one"):
        client.predict([], [5], 1.0, 300, api_name="/memory_experiment")
    bars = _figure_data(call(client, "/accuracy_by_length", ["default.pt"])["Accuracy by review length"])
    assert bars[0]["x"] == ["1–25", "26–50", "51–100", "101–150", "> 150"] and sum(bars[0]["customdata"]) == 1797


@pytest.mark.parametrize("name,module,gates", [("gru.pt", "nn.GRU", ["reset gate r", "update gate z", "candidate n"]),
                                               ("rnn.pt", "nn.RNN", [])])
def test_predict_tab_shows_gru_gates_and_rnn_states(client, name, module, gates):
    shown = call(client, "/predict", EXAMPLES[1], name, "0", 6)
    assert shown["Sentiment"]["label"] in ("positive", "negative") and f"reproduces `{module}`" in shown["Summary"]
    titles = [a["text"] for a in json.loads(shown["Gates"]["plot"])["layout"]["annotations"]]
    assert titles == gates if gates else "has no gates" in titles[0]
    assert len(_figure_data(shown["Cell and hidden state"])) == 1  # hidden state only: no separate cell state


def _first_layer_module(path, cell: str) -> tuple[torch.nn.Module, torch.nn.Embedding]:
    """The checkpoint's first recurrent layer as a fresh nn.LSTM (nn.GRU) and its embedding: the module's own
    numbers, independent of the app and of the model class."""
    checkpoint = load_checkpoint(path)
    config = checkpoint.model_config
    weights = {k.removeprefix("rnn."): v.float() for k, v in checkpoint.state_dict.items()
               if k.startswith("rnn.") and "_l0" in k}
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](config.embedding_dim, config.hidden_size, 1,
                                                                 batch_first=True, bidirectional=config.bidirectional)
    module.load_state_dict(weights)
    return module, torch.nn.Embedding.from_pretrained(checkpoint.state_dict["embedding.weight"].float())


def _layer_zero(path) -> str:
    return "0:forward" if load_checkpoint(path).model_config.bidirectional else "0"


def test_cell_step_satisfies_the_lstm_equations_at_every_token_and_matches_nn_lstm(client):
    review = "Not bad at all. The lid is flimsy, but it keeps coffee hot for hours and I would buy it again."
    predictor = load_predictor(DEFAULT_CHECKPOINT, device="cpu")
    tokens, ids = encode_review(review, predictor.vocab, predictor.max_len)
    module, embedding = _first_layer_module(DEFAULT_CHECKPOINT, "lstm")
    with torch.no_grad():
        expected = module(embedding(torch.tensor([ids])))[0][0, :, : predictor.model.config.hidden_size]  # (T, H)
    unit, previous = 7, None
    for t in range(len(ids)):
        step = call(client, "/cell_step", review, "default.pt", _layer_zero(DEFAULT_CHECKPOINT), t, unit)["Cell values"]
        assert step["token"] == tokens[t] and step["token_index"] == t and step["unit"] == unit
        assert step["c"] == pytest.approx(step["f"] * step["c_prev"] + step["i"] * step["g"], abs=1e-4)
        assert step["h"] == pytest.approx(step["o"] * math.tanh(step["c"]), abs=1e-4)
        assert step["h"] == pytest.approx(float(expected[t, unit]), abs=1e-4)  # nn.LSTM's own output
        assert 0 <= step["f"] <= 1 and 0 <= step["i"] <= 1 and 0 <= step["o"] <= 1 and -1 <= step["g"] <= 1
        if previous:  # each step starts from the state the one before ended in
            assert (step["c_prev"], step["h_prev"]) == (previous["c"], previous["h"])
        else:
            assert step["c_prev"] == step["h_prev"] == 0.0 or predictor.model.config.learned_state
        assert step["layer_vectors"]["f"][unit] == step["f"] and len(step["layer_vectors"]["h"]) == len(expected[t])
        previous = step


def test_cell_step_of_a_gru_and_out_of_range_requests(client):
    review = "Broke after a week, do not buy."
    step = call(client, "/cell_step", review, "gru.pt", _layer_zero(CHECKPOINT_DIR / "gru.pt"), 2, 5)["Cell values"]
    assert step["h"] == pytest.approx((1 - step["z"]) * step["n"] + step["z"] * step["h_prev"], abs=1e-4)
    assert "c" not in step and step["cell"] == "gru"
    length = len(encode_review(review, load_predictor(DEFAULT_CHECKPOINT, "cpu").vocab, 200)[0])
    with pytest.raises(AppError, match=f"token index \\(from 0; this review has {length} tokens\\) must be between 0 and {length - 1}"):
        client.predict(review, "default.pt", "", length, 0, api_name="/cell_step")
    with pytest.raises(AppError, match="unit index \\(from 0; this layer has \\d+ units\\) must be between"):
        client.predict(review, "default.pt", "", 0, 1000, api_name="/cell_step")
    with pytest.raises(AppError, match="unit must be between 0 and 4095; got 100000"):  # past any checkpoint's width
        client.predict(review, "default.pt", "", 0, 100_000, api_name="/cell_step")
    with pytest.raises(AppError, match="token must be a whole number between 0 and 4999; got -1.5"):
        client.predict(review, "default.pt", "", -1.5, 0, api_name="/cell_step")


def test_read_shows_the_reviews_path_through_preprocessing(client):
    read = call(client, "/read_review", "Zorblax works GREAT 100%!", "default.pt")
    rows, summary = read["The row the model sees"]["data"], read["Reading steps"]
    assert [row[1] for row in rows] == ["zorblax", "works", "great", "000", "%", "!"]
    assert rows[0][2] == 1 and all(row[2] > 1 for row in rows[1:3])  # an unknown word is _UNK (1)
    assert "`zorblax`" in summary and f"vocabulary of {len(load_predictor(DEFAULT_CHECKPOINT, 'cpu').vocab):,}" in summary


def test_mcp_serves_the_explaining_tools_with_a_description_of_every_input(free_port):
    import httpx

    demo = app.build_demo(Lab(list_jobs=False))  # as `python app.py --mcp` builds it
    demo.launch(prevent_thread_lock=True, server_port=free_port, quiet=True, mcp_server=True)
    try:
        tools = {tool["name"]: tool for tool in httpx.get(f"http://127.0.0.1:{free_port}/gradio_api/mcp/schema",
                                                          timeout=60).json()}
    finally:
        demo.close()
    assert {"predict", "cell_step", "read_review", "checkpoint_layers", "available_checkpoints", "playground",
            "unit_atlas", "unit_ablation", "unit_page", "match_units", "clamp_predict", "clamp_generate"} <= set(tools)
    assert not {"start_training", "stop_training", "watch_training", "run_memory_experiment", "run_search",
                "stop_search", "apply_preset"} & set(tools)
    for name, tool in tools.items():
        assert len(tool["description"]) > 40, name
        for parameter, spec in tool["inputSchema"]["properties"].items():
            assert len(spec.get("description", "")) > 10, f"{name}({parameter}) has no description"
    assert "c (= f*c_prev + i*g)" in tools["cell_step"]["description"]


def test_refusals_log_one_line_and_crashes_their_traceback(caplog):
    from sentiment.config import ConfigError
    from sentiment.contract import REVIEW

    @boundary.endpoint(review=REVIEW)
    def refuses(review):
        raise ConfigError(f"The review {review!r} is <b>odd</b>.")

    @boundary.endpoint(review=REVIEW)
    def crashes(review):
        return {}[review]

    with caplog.at_level("INFO", logger=log.name):
        with pytest.raises(gr.Error) as refused:
            refuses("x")
        with pytest.raises(gr.Error) as crashed:
            crashes("x")
    refusal, crash = caplog.records
    assert refusal.getMessage() == "refused refuses: The review 'x' is <b>odd</b>." and refusal.exc_info is None
    assert refused.value.message == "The review 'x' is &lt;b&gt;odd&lt;/b&gt;."  # shown as text, not HTML
    assert crash.levelname == "ERROR" and crash.exc_info[0] is KeyError
    assert crashed.value.message == ("Something went wrong on the server while answering crashes (KeyError); it is in "
                                     "the server's log. Try another input.")


def test_the_last_refusal_of_each_session_is_kept_counted_and_bounded():
    kept = Refusals(sessions=2)
    kept.remember("a", "first")
    kept.remember("a", "second")
    assert kept.last("a") == ("second", 2)
    kept.remember("b", "other")
    kept.remember("c", "newest")  # three sessions: the oldest, "a", is forgotten
    assert kept.last("a") == ("", 0) and kept.last("c") == ("newest", 1)
    kept.forget("c")
    assert kept.last("c") == ("", 0)


@pytest.mark.slow
def test_a_search_streams_its_trials_and_plots_and_keeps_the_best_checkpoint(client):
    before, folders = set(CHECKPOINT_DIR.glob("*.pt")), set(CHECKPOINT_DIR.glob("search/app-*"))
    job = client.submit(2, 300, 1, 300, "median", "", api_name="/search")
    updates = [named(client, "/search", update) for update in job]
    final = updates[-1]
    kept = set(CHECKPOINT_DIR.glob("*.pt")) - before
    try:
        assert updates[0]["Search status"].startswith("**Searching**") and final["Search status"].startswith("**Finished**")
        rows = final["Trials"]["data"]
        assert [row[0] for row in rows] == [0, 1] and {row[1] for row in rows} <= {"complete", "pruned"}
        assert len(kept) == 1 and next(iter(kept)).name in final["Search status"]
        history = json.loads(final["Optimization history"]["plot"])
        assert "Optimization History" in json.dumps(history["layout"]["title"])
        assert final["Parallel coordinates"] is not None
        assert set(CHECKPOINT_DIR.glob("search/app-*")) == folders  # each trial's own checkpoint is gone
    finally:
        for path in kept:
            path.unlink()


@pytest.mark.slow
def test_only_the_browser_that_started_a_search_stops_it(client):
    before = set(CHECKPOINT_DIR.glob("*.pt"))
    job = client.submit(3, 300, 2, 4000, "median", "browser-a", api_name="/search")
    deadline = time.time() + 60
    while "running" not in str(job.outputs()[-1:]) and time.time() < deadline:
        time.sleep(0.2)
    with pytest.raises(AppError, match="started in another browser; only that one can stop it"):
        client.predict("browser-b", api_name="/stop_search")
    assert "Stopping" in call(client, "/stop_search", "browser-a")["Search status"]
    final = named(client, "/search", job.result())
    try:
        assert final["Search status"].startswith("**Stopped**") and len(final["Trials"]["data"]) < 3
    finally:
        for path in set(CHECKPOINT_DIR.glob("*.pt")) - before:
            path.unlink()


def test_the_api_page_lists_training_with_each_setting_by_name(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/train", "/search", "/memory_experiment", "/preset"} <= set(endpoints)
    names = [p["parameter_name"] for p in endpoints["/train"]["parameters"]]
    assert names == [*TRAIN_INPUTS, *(field for _, field, _ in train.HYPER_PARAMETERS)]
    labels = {p["parameter_name"]: p["label"] for p in endpoints["/train"]["parameters"]}
    assert labels["lr"] == "learning rate" and labels["freeze_embedding"] == "freeze the embedding"


# ---------------------------------------------------------------- the Units tab

ATLAS_TABLE = "Unit atlas (click a row to open the unit)"


def test_the_unit_atlas_of_the_shipped_model_names_its_sentiment_unit(client):
    atlas = call(client, "/unit_atlas", "default.pt", "", None)
    table = atlas[ATLAS_TABLE]
    units = [row[0] for row in table["data"]]
    alone = [row[table["headers"].index("alone")] for row in table["data"]]
    assert sorted(units) == list(range(load_predictor(DEFAULT_CHECKPOINT).model.config.hidden_size))
    assert alone == sorted(alone, reverse=True)
    assert f"The sentiment unit: {units[0]}." in atlas["Atlas summary"] and "8,479 reviews" in atlas["Atlas summary"]
    assert len(plot_traces(atlas["Every unit"])) == 1
    started = time.perf_counter()
    call(client, "/unit_atlas", "default.pt", "0", None)  # the top layer named: the same atlas, kept
    assert time.perf_counter() - started < 5


def test_the_unit_page_shows_what_the_cell_step_shows_for_the_same_token(client):
    page = call(client, "/unit_page", "default.pt", "", None, 11, "hidden_state")
    assert "**Unit 11**" in page["Unit summary"] and len(plot_traces(page["Final h by class"])) == 2
    shown = page["Where it reaches its highest values"]
    review = []
    for entry in shown[1:]:  # the first review's tokens, up to the next review's heading
        if entry["class_or_confidence"] is None:
            break
        review.append((entry["token"], entry["class_or_confidence"]))
    text = " ".join(token for token, _ in review)
    for t in (0, len(review) // 2, len(review) - 1):
        step = call(client, "/cell_step", text, "default.pt", "0", t, 11)["Cell values"]
        assert step["token"] == review[t][0] and step["h"] == pytest.approx(review[t][1], abs=1e-6)


def test_clamp_predict_without_a_clamp_is_predict_and_a_clamp_moves_it(client):
    review = "It didn't disappoint."
    predicted = positive_probability(call(client, "/predict", review, "default.pt", "0", 4)["Sentiment"])
    free = call(client, "/clamp_predict", review, "default.pt", "", 5, None)
    assert positive_probability(free["Sentiment with the unit held"]) == pytest.approx(predicted, abs=1e-6)
    held = call(client, "/clamp_predict", review, "default.pt", "", 5, 3.0)
    assert positive_probability(held["Sentiment with the unit held"]) != pytest.approx(predicted, abs=1e-3)
    assert len(plot_traces(held["Prediction after each token, free and held"])) == 2
    assert "held at 3" in held["Steering summary"]


def test_match_units_on_an_uploaded_corpus(client, tmp_path):
    corpus = tmp_path / "reviews.txt"
    texts, labels, _ = load_reviews(BUNDLED_SAMPLE, limit=300)
    corpus.write_text("".join(f"__label__{2 if label else 1} {text}\n" for text, label in zip(texts, labels)))
    found = call(client, "/match_units", "default.pt", "", handle_file(str(corpus)), "", "not good", 0.3)
    passages = found["Matching passages"]["data"]
    assert "units** are above 0.3" in found["Matched units"] and "reviews.txt" in found["Matched units"]
    assert 1 <= len(passages) <= 10 and all("«" in row[3] for row in passages)
    with pytest.raises(AppError, match="phrase is empty"):
        client.predict("default.pt", "", None, "", " ", 0.3, api_name="/match_units")


def test_clamp_generate_writes_three_texts_with_one_seed(client):
    texts = call(client, "/clamp_generate", "This blender is", "default.pt", "", 67, 1.0, 8, 5)["Generated text"]
    rows = texts["data"]
    assert [row[0] for row in rows] == ["free", "unit 67 held at +1", "unit 67 held at -1"]
    assert all(len(row[1].split()) == 8 and 0 <= row[2] <= 1 for row in rows)
    again = call(client, "/clamp_generate", "This blender is", "default.pt", "", 67, 1.0, 8, 5)["Generated text"]
    assert again["data"] == rows  # the seed decides
    with pytest.raises(AppError, match="has no language model kept beside it"):
        client.predict("This blender is", "lstm.pt", "", 3, 1.0, 8, 5, api_name="/clamp_generate")
