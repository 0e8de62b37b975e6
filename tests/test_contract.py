"""Each endpoint's declared contract: the kinds of input, the boundary that checks a call against it before any work,
and the command-line flags that take the same declarations."""
from __future__ import annotations

import argparse
import inspect
import math

import gradio as gr
import pytest

from sentiment.config import ConfigError, check_settings, declared, spec_of
from sentiment.contract import (
    CHECKPOINT,
    LAYER,
    REVIEW,
    Choice,
    Many,
    Number,
    Switch,
    Text,
    from_setting,
)
from sentiment.memory.experiment import DISTANCES
from sentiment.model.checkpoint import DEFAULT_CHECKPOINT
from sentiment.model.network import ModelConfig
from sentiment.search.study import SearchSettings
from sentiment.settings import Settings
from sentiment.train.config import TrainConfig
from sentiment.ui import boundary
from sentiment.ui.lab import Lab


@pytest.mark.parametrize("param,value,read", [
    (Number("units", 1, 64, integer=True), 3, 3),
    (Number("units", 1, 64, integer=True), "12", 12),  # a numeric text, as an API client may send one
    (Number("units", 1, 64, integer=True), 5.0, 5),
    (Number("rate", 0.0, 1.0), 0.25, 0.25),
    (Number("value", -1.0, 1.0, empty=None), None, None),
    (Number("row limit", 0, 100, integer=True, empty=0), "", 0),
    (Switch("bidirectional"), False, False),
    (Choice("cell", choices=("lstm", "gru")), "gru", "gru"),
    (Text("layer", empty="", most=5), " ", ""),
    (Text("review"), "Gr\ud800eat", "Gr\ufffdeat"),  # a lone surrogate cannot be sent back: it is replaced
    (Many("cells", item=Choice("cell", choices=("lstm", "gru")), most=2), ["gru", "gru"], ["gru"]),
    (CHECKPOINT, "default.pt", DEFAULT_CHECKPOINT),
])
def test_each_kind_reads_a_good_value_as_the_handler_wants_it(param, value, read):
    assert param.check(value) == read and type(param.check(value)) is type(read)


@pytest.mark.parametrize("param,value,message", [
    (Number("units to show", 1, 64, integer=True), None, "units to show is empty: type a whole number between 1 and 64."),
    (Number("units to show", 1, 64, integer=True), 2.5, "units to show must be a whole number between 1 and 64; got 2.5"),
    (Number("units to show", 1, 64, integer=True), 65, "units to show must be between 1 and 64; got 65"),
    (Number("units to show", 1, 64, integer=True), True, "must be a whole number"),  # not read as 1
    (Number("rate", 0.0, 1.0), math.nan, "rate must be a number between 0 and 1; got nan"),
    (Number("rate", 0.0, 1.0), math.inf, "rate must be a number between 0 and 1; got inf"),
    (Number("rate", 0.0, 1.0), [0.5], "rate must be a number between 0 and 1; got \\[0.5\\]"),
    (Switch("bidirectional"), "maybe", "bidirectional must be true or false; got 'maybe'"),  # not read by truthiness
    (Switch("bidirectional"), 1, "bidirectional must be true or false; got 1"),
    (Choice("pruner", choices=("median", "halving")), "Median", "pruner must be one of median, halving; got 'Median'"),
    (Choice("pruner", choices=("median", "halving")), "", "pruner is empty: choose one of median, halving."),
    (REVIEW, "   ", "The review is empty: type or paste a customer review first."),
    (REVIEW, 42, "review must be text; got int 42"),
    (Text("phrase", most=5), "not good at all", "phrase is 15 characters; the limit is 5."),
    (Many("cell types", item=Choice("cell type", choices=("lstm",)), most=1), "lstm",
     "cell types must be a list, each one of lstm; got 'lstm'"),
    (Many("cell types", item=Choice("cell type", choices=("lstm",)), most=1), [], "cell types: choose at least one."),
    (Many("cell types", item=Choice("cell type", choices=("lstm", "gru")), most=1), ["lstm", "gru", "lstm"],
     "cell types: choose at most 1; got 2"),  # a repeat counts once
    (Many("cell types", item=Choice("cell type", choices=("lstm",)), most=2), ["lstm", "gru"],
     "cell type must be one of lstm; got 'gru'"),
    (CHECKPOINT, None, "checkpoint is empty: choose a checkpoint's file name, like default.pt."),
    (CHECKPOINT, "../app.py", "is not a checkpoint name"),
    (CHECKPOINT, "missing.pt", "missing.pt: no such checkpoint"),
])
def test_each_kind_refuses_a_bad_value_in_a_sentence_that_names_it(param, value, message):
    with pytest.raises(Exception, match=message) as refused:
        param.check(value)
    assert isinstance(refused.value, boundary.USER_ERRORS)


@pytest.mark.parametrize("cls", [TrainConfig, ModelConfig, SearchSettings])
def test_a_hyper_parameters_input_refuses_what_its_config_refuses_in_the_same_words(cls):
    """The Train tab's and the Search section's inputs are their config fields' declarations: a value out of range is
    refused by the input before a run, and by the config's own check (the command line's), in the same sentence."""
    for name, default, spec in declared(cls):
        if isinstance(default, bool):
            bad = "yes"
        elif spec.choices:
            bad = "nonsense"
        elif spec.low is not None:
            bad = spec.high * 2 + 1
        else:
            continue
        with pytest.raises(ConfigError) as at_the_input:
            from_setting(spec, default).check(bad)
        with pytest.raises(ConfigError) as in_the_config:
            check_settings(cls(**{**({"vocab_size": 1000} if cls is ModelConfig else {}), name: bad}))
        assert str(at_the_input.value) == str(in_the_config.value), name


def test_an_optional_hyper_parameter_may_be_left_empty_and_a_required_one_may_not():
    assert from_setting(spec_of(ModelConfig, "forget_bias"), None).check("") is None  # the cell's own start
    with pytest.raises(ConfigError, match="epochs is empty: type a whole number between 1 and 1000"):
        from_setting(spec_of(TrainConfig, "epochs"), 3).check(None)


def test_a_layer_is_text_or_a_number_read_as_its_text():
    assert (LAYER.check(0), LAYER.check("1:backward"), LAYER.check(None)) == ("0", "1:backward", "")
    with pytest.raises(ConfigError, match="layer must be text; got bool True"):
        LAYER.check(True)


def test_a_flag_of_the_same_value_is_refused_in_the_same_words(capsys):
    parser = argparse.ArgumentParser(prog="memory")
    parser.add_argument("--distances", nargs="+", type=DISTANCES.item.flag_type())
    assert parser.parse_args(["--distances", "5", "20"]).distances == [5, 20]
    with pytest.raises(SystemExit) as ended:
        parser.parse_args(["--distances", "500"])
    assert ended.value.code == 2
    assert "argument --distances: distance must be between 1 and 100; got '500'" in capsys.readouterr().err


def test_the_boundary_checks_every_input_before_the_handler_runs_and_hands_it_the_values_checked():
    ran = []

    @boundary.endpoint(review=REVIEW, checkpoint=CHECKPOINT, units=Number("units to show", 1, 64, integer=True))
    def handler(review: str, checkpoint: str = "default.pt", units: float = 12):
        ran.append((review, checkpoint, units))
        return units

    assert handler("Fine", "default.pt", "7") == 7
    assert handler("Fine") == 12  # the defaults go through the same check
    assert ran == [("Fine", DEFAULT_CHECKPOINT, 7), ("Fine", DEFAULT_CHECKPOINT, 12)]
    for args, message in ((("Fine", "default.pt", 0), "units to show must be between 1 and 64"),
                          (("", "default.pt", 0), "The review is empty"),  # the first input is checked first
                          (("Fine", "nope.pt", 3), "nope.pt: no such checkpoint"),
                          (("Fine", "default.pt", 3, "extra"), "handler takes 3 inputs \\(review, checkpoint, units "
                                                               "to show\\); got 4")):
        with pytest.raises(gr.Error, match=message):
            handler(*args)
    assert len(ran) == 2  # the refused calls never reached it


def test_an_input_the_contract_does_not_declare_is_a_mistake_found_at_import():
    with pytest.raises(TypeError, match="its contract declares \\['review'\\]; its inputs are \\['review', 'units'\\]"):
        @boundary.endpoint(review=REVIEW)
        def undeclared(review: str, units: float = 12):
            return review

    def progress_is_not_an_input(review: str, progress: gr.Progress = gr.Progress()):
        return review

    assert boundary.endpoint(review=REVIEW)(progress_is_not_an_input)("Fine") == "Fine"


def test_an_upload_must_be_a_file_this_app_received(tmp_path):
    upload, settings = boundary.Upload("corpus", empty=None), Settings()
    assert upload.check_with(None, settings) is None
    outside = tmp_path / "reviews.txt"
    outside.write_text("__label__2 fine\n__label__1 bad\n")
    with pytest.raises(Exception, match="reviews.txt: not a file uploaded to this app"):
        upload.check_with({"path": str(outside), "meta": {"_type": "gradio.FileData"}}, settings)
    with pytest.raises(Exception, match="Choose a training data file to upload first"):
        boundary.Upload("training data").check_with({"path": ""}, settings)
    with pytest.raises(Exception, match="Uploads are off on this server"):
        upload.check_with({"path": str(outside)}, Settings(allow_uploads=False))


def test_every_event_of_the_page_calls_its_handler_through_the_lab():
    """An @endpoint wired without `serve` would take the request for its first input (and never see the Lab)."""
    import app

    events = [block.fn for block in app.build_demo(Lab()).fns.values()]
    assert len(events) > 50
    assert not [fn.__name__ for fn in events if hasattr(fn, "contract")]  # the handler itself: not served
    served = [fn for fn in events if getattr(fn, "__name__", "") == "unit_page"]
    assert served and all("request" in inspect.signature(fn).parameters for fn in served)
