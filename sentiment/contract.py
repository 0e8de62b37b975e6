"""What every endpoint accepts, declared once: for each input its kind, its range or choices, its length, and what an
empty value stands for (or that an empty one is refused).

    @endpoint(review=REVIEW, checkpoint=CHECKPOINT, units=Number("units to show", 1, 64, integer=True))
    def predict(review, checkpoint, units): ...

The boundary (`ui/boundary.endpoint`) checks a call against its endpoint's declaration before any work starts and hands
the handler the values checked (numbers as numbers, a checkpoint as its path); the refusal names the input by its label.
A command-line flag that takes the same value takes the same declaration as its type (`Param.flag_type`), and a
hyper-parameter's declaration is its config field's (`from_setting`), so a value is refused in the same words from the
page, an API client and the shell. The fuzzer walks the declarations (`tests/test_fuzz.py`).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .config import ConfigError, Setting, bound, check_choice, field_number, shown, spec_of
from .model.checkpoint import resolve_checkpoint
from .model.network import ModelConfig
from .train.config import TrainConfig

REQUIRED: Any = object()  # an input's `empty` when an empty value is refused
MAX_TEXT_CHARS = 2_000_000  # a review (or a prompt): far past what the model reads, short of a memory problem


def is_empty(value: object) -> bool:
    """Nothing given: null, an empty or blank text, an empty list or record (what an emptied field sends)."""
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, (list, tuple, dict)) and not value)


@dataclass(frozen=True)
class Param:
    """One input: its label (what the page calls it) and the value an empty one stands for (REQUIRED: refused)."""

    label: str
    empty: Any = field(default=REQUIRED, kw_only=True)
    verb: ClassVar[str] = "type"  # what a person does to give one

    def check(self, value: object) -> Any:
        """The value as the handler reads it; ConfigError (a sentence naming the input) when it is not one."""
        if is_empty(value):
            if self.empty is REQUIRED:
                raise ConfigError(self.when_empty())
            return self.empty
        return self.parse(value)

    def parse(self, value: object) -> Any:
        raise NotImplementedError

    def expects(self) -> str:
        """What a good value is, in words ("a whole number between 1 and 64")."""
        raise NotImplementedError

    def when_empty(self) -> str:
        return f"{self.label} is empty: {self.verb} {self.expects()}."

    def flag_type(self) -> Callable[[str], Any]:
        """The check as an argparse type: a flag's bad value ends the command with this sentence."""
        def parsed(text: str) -> Any:
            try:
                return self.check(text)
            except ConfigError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        parsed.__name__ = type(self).__name__.lower()  # argparse names the type in its own messages
        return parsed


@dataclass(frozen=True)
class Text(Param):
    """Text of at most `most` characters; `hint` says what to type when an empty one is refused."""

    most: int = MAX_TEXT_CHARS
    hint: str = ""

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{self.label} must be text; got {type(value).__name__} {shown(value)}")
        if len(value) > self.most:
            raise ConfigError(f"{self.label} is {len(value):,} characters; the limit is {self.most:,}.")
        # A lone surrogate (JSON allows one) cannot be encoded in any reply: it becomes U+FFFD.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    def expects(self) -> str:
        return f"text of at most {self.most:,} characters"

    def when_empty(self) -> str:
        return f"The {self.label} is empty: {self.hint}." if self.hint else super().when_empty()


@dataclass(frozen=True)
class LayerName(Text):
    """A layer of a checkpoint as its layer list names it ("0", "1:backward"; a number is read as its text); empty is
    the top layer. The checkpoint's own layers are checked with it."""

    def parse(self, value: object) -> str:
        return super().parse(str(value) if isinstance(value, int) and not isinstance(value, bool) else value)


@dataclass(frozen=True)
class Number(Param):
    """A finite number in [low, high], a whole one when `integer` (a numeric text is read as its number)."""

    low: float = 0
    high: float = 0
    integer: bool = False

    def parse(self, value: object) -> int | float:
        return field_number(value, self.label, self.integer, self.low, self.high)

    def expects(self) -> str:
        return f"{'a whole number' if self.integer else 'a number'} between {bound(self.low)} and {bound(self.high)}"


@dataclass(frozen=True)
class Switch(Param):
    """True or false, and nothing read by its truthiness ("maybe" is not true)."""

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{self.label} must be true or false; got {shown(value)}")
        return value

    def expects(self) -> str:
        return "true or false"

    def flag_type(self) -> Callable[[str], Any]:
        raise TypeError("a switch is a flag without a value (--name / --no-name)")


@dataclass(frozen=True)
class Choice(Param):
    """One of `choices`, spelt exactly."""

    choices: tuple[str, ...] = ()
    verb: ClassVar[str] = "choose"

    def parse(self, value: object) -> str:
        check_choice(self.label, value, self.choices)
        return value

    def expects(self) -> str:
        return f"one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class Many(Param):
    """A list of 1 to `most` values, each of them an `item` (a repeated one counts once)."""

    item: Param = Text("item")
    most: int = 1

    def parse(self, value: object) -> list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{self.label} must be a list, each {self.item.expects()}; got {shown(value)}")
        # Repeats count once; a list far longer than any choice is refused unread.
        chosen = list(dict.fromkeys(self.item.check(v) for v in value)) if len(value) <= 100 * self.most else value
        if len(chosen) > self.most:
            raise ConfigError(f"{self.label}: choose at most {self.most}; got {len(chosen):,}")
        return chosen

    def expects(self) -> str:
        return f"1 to {self.most} of: {self.item.expects()}"

    def when_empty(self) -> str:
        return f"{self.label}: choose at least one."


@dataclass(frozen=True)
class CheckpointName(Param):
    """The file name of a checkpoint in checkpoints/ ("default.pt"); checked as a name, then as a file: its path."""

    verb: ClassVar[str] = "choose"

    def parse(self, value: object) -> Path:
        return resolve_checkpoint(value)

    def expects(self) -> str:
        return "a checkpoint's file name, like default.pt"


def from_setting(spec: Setting, default: Any) -> Param:
    """A hyper-parameter's input, as its config field declares it (an optional number may be left empty)."""
    if isinstance(default, bool):
        return Switch(spec.label)
    if spec.choices:
        return Choice(spec.label, choices=spec.choices)
    if spec.low is None:
        raise TypeError(f"{spec.label}: a setting a person sets declares its choices or its range")
    return Number(spec.label, spec.low, spec.high, integer=isinstance(default, int),
                  empty=None if default is None else REQUIRED)


# The inputs many endpoints share.
REVIEW = Text("review", hint="type or paste a customer review first")
CHECKPOINT = CheckpointName("checkpoint")
LAYER = LayerName("layer", empty="", most=40)
OWNER = Text("owner", empty="", most=100)  # a browser's random id: only the browser that started a run may stop it
# A token of a review and a unit of a layer, within what any checkpoint may have; the checkpoint's own review and width
# are checked with them.
TOKEN = Number("token", 0, spec_of(TrainConfig, "max_len").high - 1, integer=True)
UNIT = Number("unit", 0, spec_of(ModelConfig, "hidden_size").high - 1, integer=True)
