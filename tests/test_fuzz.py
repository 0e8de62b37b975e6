"""A fuzzer for every endpoint: Hypothesis walks each `api_name` endpoint's declared contract (sentiment/contract.py)
and sends each parameter values its declaration says are wrong (just past its range, a choice misspelt, a switch
spelt as text, a list too long) beside values of the wrong kind, empty ones, NaN and infinities, huge and negative
numbers and odd text (raw JSON, so that NaN and lone surrogates go through as a hostile client sends them), the other
parameters valid. Each call must end with a result or a refusal
sentence: never `null`, never "Error" alone, never an exception's own text, never a traceback from our code in the
log; and the app must still answer, within its memory. The command-line entry points get the same treatment.

CI runs a bounded number of examples (the "ci" profile); `HYPOTHESIS_PROFILE=long python -m pytest tests/test_fuzz.py`
runs many more.
"""
from __future__ import annotations

import json
import logging
import os
import resource
from collections import Counter

import httpx
import pytest
from app_api import call, train_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentiment.contract import CheckpointName, Choice, Many, Number, Param, Switch, Text
from sentiment.model.checkpoint import CHECKPOINT_DIR
from sentiment.ui import boundary, memory, playground, predict, search, train, units
from sentiment.ui.jobs import log

pytestmark = pytest.mark.slow
settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

REVIEW = "Not bad at all, it works."
# A valid call of every endpoint a client may call; the fuzzer changes one parameter at a time. An endpoint that is
# not here fails the first test: a new endpoint joins the fuzzer as it lands.
VALID = {
    "predict": [REVIEW, "default.pt", "0", 4, "when read"],
    "cell_step": [REVIEW, "default.pt", "0", 1, 3],
    "read_review": [REVIEW, "default.pt"],
    "checkpoint_layers": ["default.pt"],
    "list_checkpoints": ["default.pt"],
    "compare_memory": [REVIEW, ["rnn.pt", "lstm.pt"]],
    "accuracy_by_length": [["rnn.pt"]],
    "playground": ["lstm", 5, 10, 1, 1, 3, True, False],
    "memory_experiment": [["lstm"], [5], 1.0, 5],
    "preset": ["quick"],
    "train": train_args(limit=150, epochs=1, name="fuzz"),
    "stop_training": [""],
    "search": [1, 60, 1, 150, "median", ""],
    "stop_search": [""],
    "watch_training": [],
    "restrictions": [],
    "unit_atlas": ["default.pt", "", None],
    "unit_ablation": ["default.pt", "", None],
    "unit_page": ["default.pt", "", None, 3, "hidden_state"],
    "match_units": ["default.pt", "", None, "", "not good", 0.3],
    "clamp_predict": [REVIEW, "default.pt", "", 3, 1.0],
    "clamp_generate": ["This blender is", "default.pt", "", 3, 1.0, 5, 0],
}
# The function behind each endpoint, whose contract the fuzzer walks.
HANDLERS = {
    "predict": predict.predict, "cell_step": predict.cell_step, "read_review": predict.read_review,
    "checkpoint_layers": predict.checkpoint_layers, "list_checkpoints": boundary.available_checkpoints,
    "compare_memory": memory.compare_memory, "accuracy_by_length": memory.compare_length_accuracy,
    "playground": playground.playground, "memory_experiment": memory.run_memory_experiment,
    "preset": train.apply_preset, "train": train.start_training, "stop_training": train.stop_training,
    "search": search.run_search, "stop_search": search.stop_search, "watch_training": train.watch_training,
    "restrictions": train.server_restrictions, "unit_atlas": units.unit_atlas, "unit_ablation": units.unit_ablation,
    "unit_page": units.unit_page, "match_units": units.match_units, "clamp_predict": units.clamp_predict,
    "clamp_generate": units.clamp_generate,
}
ODD_TEXT = ["", " ", "\x00", "\u202eevil\u202c", "\ud800", "a\udfffb", "../../etc/passwd", "default.pt\x00.txt",
            "<script>alert(1)</script>", "null", "NaN", "1e309", "-1", "é" * 300, "🙂" * 50]
BAD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),  # training flushes subnormals to zero
    st.sampled_from(ODD_TEXT), st.text(max_size=30),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3),
    st.dictionaries(st.sampled_from(["path", "url", "meta", "x"]), st.one_of(st.text(max_size=20), st.none()),
                    max_size=2),
)
HUGE = "a" * 10_000_000  # 10 MB of text, sent once per text parameter


def wrong_for(param: Param) -> st.SearchStrategy:
    """Values that the declaration of `param` itself says are wrong (never a good one: at an edge of its range one
    would start a run of hours)."""
    if isinstance(param, Number):
        edges = [param.low - 1, param.high + 1, str(param.high + 1), -param.high - 1]
        if param.integer:
            edges += [param.low + 0.5, f"{param.low}.5"]
        return st.sampled_from(edges)
    if isinstance(param, Choice):
        return st.sampled_from([c.upper() for c in param.choices] + [f" {c}" for c in param.choices]
                               + [list(param.choices)])
    if isinstance(param, Switch):
        return st.sampled_from(["true", "false", "yes", 1, 0, [True]])
    if isinstance(param, Text):
        return st.sampled_from(["x" * (param.most + 1), ["text"], {"text": "x"}, 7])
    if isinstance(param, Many):
        return st.one_of(st.lists(wrong_for(param.item), min_size=1, max_size=2), st.sampled_from([
            [None] * (param.most + 1), "not a list", {"0": "x"}]))
    if isinstance(param, CheckpointName):
        return st.sampled_from(["missing.pt", "../app.py", "default", ".pt", "lm/default.pt", "x" * 200 + ".pt"])
    return st.nothing()  # an upload: the files of UPLOADS
TALLY: Counter = Counter()  # (endpoint, how it ended) of every fuzzed call, for the summary after the module


def _endpoints(app_url: str) -> dict[str, list[str]]:
    """Every endpoint a client may call (public or undocumented), with the kind of component of each input."""
    config = httpx.get(app_url + "config", timeout=60).json()
    kinds = {c["id"]: c["type"] for c in config["components"]}
    return {d["api_name"]: [kinds[i] for i in d["inputs"]] for d in config["dependencies"]
            if d.get("api_name") and d.get("api_visibility") in ("public", "undocumented")}


# Files a hostile client uploads, then names in a call: what reaches our code through an upload input once Gradio has
# checked it is a record of a file it received (see the tests of what Gradio answers else).
UPLOADS = {"random.txt": bytes(range(256)) * 40, "empty.txt": b"", "not-gzip.gz": b"__label__2 fine\n",
           "one-class.txt": b"__label__2 good\n__label__2 fine\n", "cut.bz2": b"BZh91AY&SY",
           "nul.csv": b"text,label\n\x00\x00,1\n", "reviews.txt": b"__label__2 great\n__label__1 awful\n"}


@pytest.fixture(scope="module")
def file_records(app_url):
    """None, or a record of one of UPLOADS as the server stored it."""
    files = [("files", (name, content)) for name, content in UPLOADS.items()]
    paths = httpx.post(app_url + "gradio_api/upload", files=files, timeout=60).json()
    return st.one_of(st.none(), st.sampled_from([{"path": p, "meta": {"_type": "gradio.FileData"}} for p in paths]))


def _raw_call(app_url: str, api_name: str, data: list) -> tuple[str, object]:
    """(final event, its data) of one call sent as raw JSON, as any HTTP client may send it."""
    body = json.dumps({"data": data}, allow_nan=True)  # NaN, Infinity and lone surrogates ("\ud800") go through
    with httpx.Client(base_url=app_url, timeout=300) as http:
        started = http.post(f"gradio_api/call/{api_name}", content=body, headers={"content-type": "application/json"})
        if started.status_code != 200:
            return f"http {started.status_code}", started.text
        event, payload = "", None
        with http.stream("GET", f"gradio_api/call/{api_name}/{started.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    payload = json.loads(line.removeprefix("data:").strip())
    return event, payload


def tally_of(event: str) -> int:
    return sum(n for (_, ended), n in TALLY.items() if ended == event)


class Crashes(logging.Handler):
    """Collects what the app logs at ERROR: a handler crash our code did not expect."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def crashes(app_url, lab):
    """Our log's errors while the module runs; every checkpoint a fuzzed training run saved is removed after it."""
    before = set(CHECKPOINT_DIR.glob("*.pt"))
    handler = Crashes()
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)
    per_endpoint = Counter(name for name, _ in TALLY.elements())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nfuzzed {sum(TALLY.values())} calls ({min(per_endpoint.values(), default=0)}–"
          f"{max(per_endpoint.values(), default=0)} an endpoint): {tally_of('error')} refused with a sentence, "
          f"{tally_of('complete')} answered; peak memory of the process {peak_mb:,.0f} MB")
    lab.jobs.stop_any()
    lab.jobs.join(120)
    for path in set(CHECKPOINT_DIR.glob("*.pt")) - before:
        path.unlink()


def _assert_answered(event: str, payload: object, what: str) -> None:
    assert event in ("complete", "error"), f"{what}: ended with {event!r} ({str(payload)[:200]})"
    if event == "error":
        message = payload.get("error") if isinstance(payload, dict) else payload
        assert isinstance(message, str) and len(message) > 15, f"{what}: refused with {payload!r}, not a sentence"
        assert message.strip().lower() != "error" and "Traceback" not in message, f"{what}: {message[:200]}"
        assert "Something went wrong" not in message, f"{what}: our code crashed: {message}"


def test_every_endpoint_a_client_may_call_is_fuzzed_through_its_declared_contract(app_url):
    inputs = {k: len(v) for k, v in _endpoints(app_url).items()}
    assert {name: len(args) for name, args in VALID.items()} == inputs
    assert {name: len(handler.contract) for name, handler in HANDLERS.items()} == inputs


@pytest.mark.parametrize("api_name", [name for name, args in VALID.items() if args])
def test_each_parameter_of_each_endpoint_is_answered_with_a_result_or_a_sentence(app_url, crashes, file_records,
                                                                                 api_name):
    kinds, before = _endpoints(app_url)[api_name], len(crashes.records)

    @settings(settings.get_profile(PROFILE))
    @given(data=st.data())
    def fuzz(data) -> None:
        args = list(VALID[api_name])
        index = data.draw(st.integers(0, len(args) - 1), label="parameter")
        param = list(HANDLERS[api_name].contract.values())[index]
        args[index] = data.draw(file_records if kinds[index] == "file" else st.one_of(wrong_for(param), BAD),
                                label="value")
        event, payload = _raw_call(app_url, api_name, args)
        TALLY[api_name, event] += 1
        _assert_answered(event, payload, f"/{api_name} with parameter {index} = {str(args[index])[:60]!r}")

    fuzz()
    assert not crashes.records[before:], [r.getMessage() for r in crashes.records[before:]]


def test_what_gradio_answers_an_upload_input_that_is_not_a_file_record(app_url, crashes):
    """Gradio checks each upload input against its file record model, and that the file is one it received, before
    any handler runs, and answers a value that is neither with a bare error ({"error": null}; its traceback is in
    Gradio's log, not ours): no public hook turns that answer into a sentence. Recorded here, so that a Gradio that
    answers better shows up."""
    before = len(crashes.records)
    outside = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in ("/etc/passwd", "../app.py", "")]
    for bad in (False, 2.5, "/etc/passwd", ["x"], {"path": "/etc/passwd"}, *outside):
        args = list(VALID["train"])
        args[1] = bad
        assert _raw_call(app_url, "train", args) == ("error", {"error": None}), bad
    assert not crashes.records[before:]  # our code never saw them


def test_what_gradio_answers_a_call_with_too_few_inputs(app_url, crashes):
    """Gradio counts an event's inputs before any handler runs and answers too few with a bare error ({"error":
    null}); no public hook turns that answer into a sentence. Recorded here, so that a Gradio that answers better shows
    up. Extra inputs are dropped, and the call is answered."""
    before = len(crashes.records)
    for api_name, args in VALID.items():
        if args:
            assert _raw_call(app_url, api_name, args[:-1]) == ("error", {"error": None}), api_name
    assert _raw_call(app_url, "predict", [*VALID["predict"], "extra"])[0] == "complete"
    assert not crashes.records[before:]  # our code never saw them


@pytest.mark.parametrize("api_name", [name for name, args in VALID.items()
                                      if any(isinstance(a, str) for a in args)])
def test_ten_megabytes_of_text_in_any_text_parameter(app_url, crashes, api_name):
    before = len(crashes.records)
    for index, value in enumerate(VALID[api_name]):
        if isinstance(value, str):
            args = list(VALID[api_name])
            args[index] = HUGE
            _assert_answered(*_raw_call(app_url, api_name, args), f"/{api_name} with 10 MB in parameter {index}")
    assert not crashes.records[before:], [r.getMessage() for r in crashes.records[before:]]


def test_the_app_still_answers_within_its_memory_after_the_fuzzing(app_url, client_after_fuzzing):
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 4096
    assert call(client_after_fuzzing, "/predict", REVIEW, "default.pt", "0", 4)["Sentiment"]["label"] == "positive"


@pytest.fixture
def client_after_fuzzing(app_url, crashes):
    from gradio_client import Client

    return Client(app_url, verbose=False)


# ---------------------------------------------------------------- the command line

# Odd values that no flag accepts: a value a flag accepted would start real work (training, an hour of benchmark).
NUMBERS = ["", "nan", "inf", "-1", "1e309", "99999999999", "abc", "\x7f"]  # ints and bounded floats
UNPARSED = ["", "nan", "abc", "1e309", "\x7f", "1.5"]  # not an int at all
CHOICES = ["", "abc", "\x7f", "LSTM ", "-"]
LAYERS = CHOICES[1:]  # "" is the top layer, as in the Units tab
PATHS = ["", "missing.pt", "../nope", "\x7f", "nan", "/dev/null", "."]
CLI = {
    "sentiment.train": [(["--epochs", "--lr", "--batch-size", "--hidden-size", "--dropout", "--max-len", "--limit",
                          "--seed"], NUMBERS), (["--cell", "--schedule", "--preset", "--device"], CHOICES),
                        (["--data"], PATHS)],
    "sentiment.evaluate": [(["--checkpoint", "--data"], PATHS)],
    "sentiment.predict": [(["--checkpoint"], PATHS)],
    "sentiment.memory": [(["--cells"], CHOICES), (["--distances", "--steps"], UNPARSED)],
    "sentiment.vectors": [(["export"], PATHS)],
    "sentiment.bench": [(["--seeds", "--repeats", "--train-steps"], UNPARSED)],
    "sentiment.units": [(["--checkpoint", "--data"], PATHS), (["--layer"], LAYERS), (["--top"], UNPARSED)],
    "sentiment.search": [(["--trials", "--timeout", "--limit", "--max-epochs"], NUMBERS), (["--pruner"], CHOICES),
                         (["--storage"], ["ftp://x", "journal:", "journal:/no/such/dir/s", "redis://x", "nan",
                                          "sqlite:////no/such/dir/s.db", "\x7f"]), (["--study"], ["", "x" * 101])],
}


def _cli_case(module: str):
    return st.sampled_from(CLI[module]).flatmap(lambda case: st.tuples(st.sampled_from(case[0]),
                                                                       st.sampled_from(case[1])))


@pytest.mark.parametrize("module", CLI)
def test_every_command_refuses_odd_flags_with_one_error_line(module, capsys, tmp_path, monkeypatch):
    import importlib

    from sentiment import cli

    monkeypatch.chdir(tmp_path)  # anything a command would write lands here
    command = importlib.import_module(module)
    # A command that is a package (train, units, memory, search, bench) has its main in its __main__.
    main = (importlib.import_module(f"{module}.__main__") if hasattr(command, "__path__") else command).main
    profile = settings.get_profile(PROFILE)

    @settings(profile, max_examples=min(profile.max_examples, 10))
    @given(case=_cli_case(module))
    def fuzz(case: tuple[str, str]) -> None:
        flag, value = case
        argv = {"sentiment.vectors": [flag, value, str(tmp_path / "out.vec")], "sentiment.bench": ["quality", flag, value],
                "sentiment.predict": [flag, value, REVIEW], "sentiment.units": ["atlas", flag, value]}.get(module, [flag, value])
        with pytest.raises(SystemExit) as ended:
            cli.run(lambda: main(argv))
        err = capsys.readouterr().err
        assert ended.value.code == 2, f"{module} {argv}: exit {ended.value.code}"
        assert "error:" in err and "Traceback" not in err, f"{module} {argv}: {err[-300:]}"

    fuzz()
