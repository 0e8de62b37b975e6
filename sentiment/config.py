"""A bounded value declared once: a `Param` says what an input takes (its kind, its range or choices, its length and
what an empty one stands for) and refuses anything else in a sentence that names it, from the page, an API client, the
shell or the environment alike. A hyper-parameter declares itself on its config field: its label, hint, range or
choices and the Train tab group it shows in, and its checks, the Train tab's inputs and the CLI's flags are all read
from that declaration.

    lr: float = setting(0.005, "learning rate", "the optimiser's step size (AdamW)", low=1e-7, high=10.0, group="basic")

Adding a hyper-parameter is that one line: `check_settings` checks it through the input its declaration builds
(`from_setting`), `grouped` lists it for the Train tab and `cli.add_dataclass_flags` makes it a flag with its hint as
help. The endpoints' own inputs (a review, a checkpoint, a layer) are declared in sentiment/contract.py.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

# The Train tab's groups, in the order it shows them: the basic row, then the rows under "Advanced".
GROUPS = ("basic", "model", "switches", "optimiser", "data")


class UserError(Exception):
    """A refusal with a message meant for the person who asked. The UI, the API and the commands catch USER_ERRORS and
    show the sentence; anything else is a bug, logged with its traceback. An OSError (a disk full, a folder not
    writable) is the machine's answer to the person's request, so it is shown as it is."""


USER_ERRORS = (UserError, OSError)


class ConfigError(UserError, ValueError):
    """A hyper-parameter out of range, with a message meant for the person who set it."""


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
class Number(Param):
    """A finite number in [low, high], a whole one when `integer`, from a field, an API call, a flag or the environment
    (a numeric text is read as its number): an int when `integer`, else a float."""

    low: float
    high: float
    integer: bool = field(default=False, kw_only=True)

    def parse(self, value: object) -> int | float:
        given = value  # quoted as it came (a flag's "0", not 0.0)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and (
                not math.isfinite(value) or (self.integer and not value.is_integer())))):
            raise ConfigError(f"{self.label} must be {self.expects()}; got {shown(given)}")
        if not self.low <= value <= self.high:
            raise ConfigError(f"{self.label} must be between {bound(self.low)} and {bound(self.high)}; "
                              f"got {shown(given)}")
        return int(value) if self.integer else float(value)

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
        if not isinstance(value, str) or value not in self.choices:
            raise ConfigError(f"{self.label} must be {self.expects()}; got {shown(value)}")
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
class Setting:
    """What a config field declares about itself (its `metadata["setting"]`)."""

    label: str
    hint: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    group: str = ""  # one of GROUPS; "" keeps it out of the Train tab (set by the program, not a person)
    # The most a public demo allows (a number, or False for a switch it keeps off); None: no cap. A public run on a
    # free 2-vCPU Space stays small in memory and time.
    public: Any = None
    unlimited_at: Any = None  # the value that means "no limit" (0 rows = every row): over any cap


def setting(default: Any, label: str, hint: str, *, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = (), group: str = "", public: Any = None, unlimited_at: Any = None) -> Any:
    """A dataclass field that declares itself: its default, label, hint, range or choices, Train tab group and the
    cap a public demo puts on it."""
    if group and group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}; got {group!r}")
    spec = Setting(label=label, hint=hint, low=low, high=high, choices=tuple(choices), group=group, public=public,
                   unlimited_at=unlimited_at)
    return field(default=default, metadata={"setting": spec})


def over_public_cap(value: Any, spec: Setting) -> bool:
    """Whether a public demo must lower `value` to `spec.public`."""
    if spec.public is None:
        return False
    if isinstance(spec.public, bool):
        return bool(value) and not spec.public
    return value > spec.public or (spec.unlimited_at is not None and value == spec.unlimited_at)


def declared(cls: type) -> list[tuple[str, Any, Setting]]:
    """(name, default, setting) of every field of `cls` that declares itself, in the class's order."""
    return [(f.name, f.default, f.metadata["setting"]) for f in fields(cls) if "setting" in f.metadata]


def spec_of(cls: type, name: str) -> Setting:
    """What field `name` of `cls` declares about itself."""
    return next(spec for field_name, _, spec in declared(cls) if field_name == name)


def range_of(cls: type, name: str) -> dict[str, float | None]:
    """The range field `name` of `cls` declares, for a field of another class that takes the same values:
    `setting(1.0, "forget-gate bias", "…", **range_of(ModelConfig, "forget_bias"))`."""
    spec = spec_of(cls, name)
    return {"low": spec.low, "high": spec.high}


def grouped(*classes: type) -> list[tuple[type, str, Setting]]:
    """(class, name, setting) of the fields of `classes` that a person sets, group by group in GROUPS' order and,
    within a group, class by class: the Train tab's inputs, in its order."""
    return [(cls, name, spec) for group in GROUPS for cls in classes
            for name, _, spec in declared(cls) if spec.group == group]


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


def param_of(cls: type, name: str) -> Param:
    """The input of field `name` of `cls`, as its declaration builds it."""
    return next(from_setting(spec, default) for field_name, default, spec in declared(cls) if field_name == name)


def check_settings(config: Any, skip: tuple[str, ...] = ()) -> None:
    """ConfigError unless every declared field of `config` (but those in `skip`) holds a value its input
    (`from_setting`) takes as it is: the input's refusal, naming the field by its label as the Train tab shows it.
    A field of free text (a path, a name) has no such input: its class checks it."""
    for name, default, spec in declared(type(config)):
        if name in skip or (isinstance(default, str) and not spec.choices):
            continue
        value, param = getattr(config, name), from_setting(spec, default)
        # An input reads the text "12" as 12 and an empty value as what it stands for; a config holds the value itself.
        if param.check(value) != value:
            raise ConfigError(f"{spec.label} must be {param.expects()}; got {shown(value)}")


def bound(value: float) -> str:
    """A range's end as a refusal or a flag's help writes it: 5000, 0.5, 1e-07 (never 5000.0 or 5e+03)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def shown(value: object) -> str:
    """A value as an error message quotes it: never more than 40 characters of it."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
