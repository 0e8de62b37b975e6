"""What every endpoint accepts, declared once: for each input its kind, its range or choices, its length, and what an
empty value stands for (or that an empty one is refused).

    @endpoint(review=REVIEW, checkpoint=CHECKPOINT, units=Number("units to show", 1, 64, integer=True))
    def predict(review, checkpoint, units): ...

The kinds of input (Number, Text, Choice, Switch, Many) are sentiment/config.py's, the one declaration of a bounded
value; this module adds the endpoints' own (a checkpoint, a layer) and the inputs many endpoints share, and exports the
kinds beside them. The boundary (`ui/boundary.endpoint`) checks a call against its endpoint's declaration before any
work starts and hands the handler the values checked (numbers as numbers, a checkpoint as its path); the refusal names
the input by its label. A command-line flag that takes the same value takes the same declaration as its type
(`Param.flag_type`), and a hyper-parameter's declaration is its config field's (`from_setting`), so a value is refused
in the same words from the page, an API client and the shell. The fuzzer walks the declarations (`tests/test_fuzz.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from .config import (
    MAX_TEXT_CHARS,
    REQUIRED,
    Choice,
    Many,
    Number,
    Param,
    Switch,
    Text,
    from_setting,
    is_empty,
    spec_of,
)
from .model.checkpoint import resolve_checkpoint
from .model.network import ModelConfig
from .train.config import TrainConfig

__all__ = ["CHECKPOINT", "LAYER", "MAX_TEXT_CHARS", "OWNER", "REQUIRED", "REVIEW", "TOKEN", "UNIT", "CheckpointName",
           "Choice", "LayerName", "Many", "Number", "Param", "Switch", "Text", "from_setting", "is_empty"]


@dataclass(frozen=True)
class LayerName(Text):
    """A layer of a checkpoint as its layer list names it ("0", "1:backward"; a number is read as its text); empty is
    the top layer. The checkpoint's own layers are checked with it."""

    def parse(self, value: object) -> str:
        return super().parse(str(value) if isinstance(value, int) and not isinstance(value, bool) else value)


@dataclass(frozen=True)
class CheckpointName(Param):
    """The file name of a checkpoint in checkpoints/ ("default.pt"); checked as a name, then as a file: its path."""

    verb: ClassVar[str] = "choose"

    def parse(self, value: object) -> Path:
        return resolve_checkpoint(value)

    def expects(self) -> str:
        return "a checkpoint's file name, like default.pt"


# The inputs many endpoints share.
REVIEW = Text("review", hint="type or paste a customer review first")
CHECKPOINT = CheckpointName("checkpoint")
LAYER = LayerName("layer", empty="", most=40)
OWNER = Text("owner", empty="", most=100)  # a browser's random id: only the browser that started a run may stop it
# A token of a review and a unit of a layer, within what any checkpoint may have; the checkpoint's own review and width
# are checked with them.
TOKEN = Number("token", 0, spec_of(TrainConfig, "max_len").high - 1, integer=True)
UNIT = Number("unit", 0, spec_of(ModelConfig, "hidden_size").high - 1, integer=True)
