"""Each hyper-parameter is declared once, on its config field; the checks, the Train tab and the CLI read it there."""
import argparse
from dataclasses import dataclass

import pytest

from sentiment import cli
from sentiment.config import (
    GROUPS,
    ConfigError,
    Number,
    check_settings,
    grouped,
    setting,
)
from sentiment.model.network import ModelConfig
from sentiment.train.config import TrainConfig


@dataclass
class WithWarmup(TrainConfig):
    warmup: int = setting(0, "warm-up steps", "steps of rising learning rate at the start", low=0, high=1000,
                          group="optimiser")


def test_a_hyper_parameter_added_in_one_line_is_checked_listed_for_the_train_tab_and_a_flag():
    check_settings(WithWarmup(warmup=50))
    with pytest.raises(ConfigError, match="warm-up steps must be between 0 and 1000"):
        WithWarmup(warmup=5000).validate()
    with pytest.raises(ConfigError, match="warm-up steps must be a whole number"):
        WithWarmup(warmup=2.5).validate()
    tab = [(cls, name, spec.group) for cls, name, spec in grouped(ModelConfig, WithWarmup)]
    optimiser = [name for _, name, group in tab if group == "optimiser"]
    assert optimiser[-1] == "warmup" and len(tab) == len(grouped(ModelConfig, TrainConfig)) + 1
    parser = argparse.ArgumentParser()
    cli.add_dataclass_flags(parser, WithWarmup)
    assert parser.parse_args(["--warmup", "7"]).warmup == 7
    assert "warm-up steps: steps of rising learning rate at the start; 0 to 1000" in " ".join(parser.format_help().split())


def test_every_setting_a_person_sets_has_a_label_a_hint_and_a_known_group():
    for cls, name, spec in grouped(ModelConfig, TrainConfig):
        assert spec.label and spec.hint and spec.group in GROUPS, name
    assert [name for _, name, _ in grouped(ModelConfig, TrainConfig)][:6] == [
        "cell", "hidden_size", "num_layers", "epochs", "lr", "batch_size"]  # the Train tab's first row


@pytest.mark.parametrize("changes,message", [
    (dict(titles="maybe"), "train on titles too must be true or false"),
    (dict(schedule="sometimes"), "learning-rate schedule must be one of constant, cosine"),
    (dict(epochs=float("nan")), "epochs must be a whole number"),
    (dict(lr=float("nan")), "learning rate must be a number between"),
    (dict(epochs="3"), "epochs must be a whole number between 1 and 1000; got '3'"),  # an input reads it, not a config
    (dict(device="tpu"), "device must be one of auto, cpu, cuda"),
])
def test_values_of_the_wrong_kind_are_refused_by_the_declaration(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()
    with pytest.raises(ConfigError, match="bidirectional must be true or false"):
        ModelConfig(vocab_size=10, bidirectional="yes").validate()


@pytest.mark.parametrize("value,integer,message", [
    (None, True, "units is empty: type a whole number between 1 and 64."),
    ("  ", False, "units is empty: type a number between 1 and 64."),
    ("many", True, "units must be a whole number between 1 and 64; got 'many'"),
    (2.5, True, "units must be a whole number between 1 and 64; got 2.5"),
    (True, True, "units must be a whole number between 1 and 64; got True"),
    (float("nan"), False, "units must be a number between 1 and 64; got nan"),
    ("inf", False, "units must be a number between 1 and 64; got 'inf'"),
    (65, True, "units must be between 1 and 64; got 65"),
    (10**400, True, "units must be between 1 and 64; got 1000000000.*"),  # too big for a float, still a sentence
])
def test_a_fields_number_is_refused_with_a_sentence_naming_the_field(value, integer, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        Number("units", 1, 64, integer=integer).check(value)


def test_a_fields_number_reads_numeric_text_as_the_fields_kind():
    units = Number("units", 1, 64, integer=True)
    assert units.check("12") == 12 and isinstance(units.check(12.0), int)
    assert Number("dropout", 0, 1).check(" 0.5 ") == 0.5 and Number("bias", -10, 10).check(3) == 3.0


def test_the_settings_a_person_sets_are_checked_before_the_vocabulary_is_known():
    assert ModelConfig().validate(vocab_known=False).vocab_size == 0  # set from the data once a run reads it
    with pytest.raises(ConfigError, match="vocabulary size must be between 2 and"):
        ModelConfig().validate()
    with pytest.raises(ConfigError, match="hidden size must be between 1 and 4096; got 0"):
        ModelConfig(hidden_size=0).validate(vocab_known=False)
