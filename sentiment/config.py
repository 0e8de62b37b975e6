"""Hyper-parameters declared once: each config field carries its label, hint, range or choices and the Train tab group
it shows in, and the checks, the Train tab's inputs and the CLI's flags are all read from that declaration.

    lr: float = setting(0.005, "learning rate", "the optimiser's step size (AdamW)", low=1e-7, high=10.0, group="basic")

Adding a hyper-parameter is that one line: `check_settings` checks it, `grouped` lists it for the Train tab and
`cli.add_dataclass_flags` makes it a flag with its hint as help.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

# The Train tab's groups, in the order it shows them: the basic row, then the rows under "Advanced".
GROUPS = ("basic", "model", "switches", "optimiser", "data")


class UserError(Exception):
    """A refusal with a message meant for the person who asked. The UI, the API and the commands catch USER_ERRORS and
    show the sentence; anything else is a bug, logged with its traceback. An OSError (a disk full, a folder not
    writable) is the machine's answer to the person's request, so it is shown as it is."""


USER_ERRORS = (UserError, OSError)


class ConfigError(UserError, ValueError):
    """A hyper-parameter out of range, with a message meant for the person who set it."""


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
    spec = Setting(label, hint, low, high, tuple(choices), group, public, unlimited_at)
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


def grouped(*classes: type) -> list[tuple[type, str, Setting]]:
    """(class, name, setting) of the fields of `classes` that a person sets, group by group in GROUPS' order and,
    within a group, class by class: the Train tab's inputs, in its order."""
    return [(cls, name, spec) for group in GROUPS for cls in classes
            for name, _, spec in declared(cls) if spec.group == group]


def check_settings(config: Any) -> None:
    """ConfigError unless every declared field of `config` holds a value of its kind within its range or choices; the
    refusal names the field by its label, as the Train tab shows it."""
    for name, default, spec in declared(type(config)):
        value, label = getattr(config, name), spec.label
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{label} must be true or false; got {shown(value)}")
        elif spec.choices:
            check_choice(label, value, spec.choices)
        elif spec.low is not None and not (default is None and value is None):
            check_range(label, value, spec.low, spec.high, integer=isinstance(default, int))


def field_number(value: object, name: str, integer: bool = True, low: float | None = None,
                 high: float | None = None) -> int | float:
    """The number in a field, an API call or the environment (a numeric string too), as an int when `integer`, within
    [low, high] when given. Empty, non-numeric, NaN, infinite and (for a whole number) fractional values are refused
    with a sentence that names the field."""
    kind = ("a whole number" if integer else "a number") + (
        f" between {bound(low)} and {bound(high)}" if low is not None else "")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigError(f"{name} is empty: type {kind}")
    given = value  # quoted as it came (a flag's "0", not 0.0)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (isinstance(value, float) and (not math.isfinite(value) or (integer and not value.is_integer())))):
        raise ConfigError(f"{name} must be {kind}; got {shown(given)}")
    if low is not None and not low <= value <= high:
        raise ConfigError(f"{name} must be between {bound(low)} and {bound(high)}; got {shown(given)}")
    return int(value) if integer else float(value)


def whole_number(value: object, name: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a field, an API call or the environment; anything else is refused."""
    return field_number(value, name, True, low, high)


def check_range(name: str, value, low, high, integer: bool = True) -> None:
    """Raise ConfigError unless low <= value <= high (and a whole number when `integer`)."""
    kind = "a whole number" if integer else "a number"
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or (integer and isinstance(value, float) and not value.is_integer())):
        raise ConfigError(f"{name} must be {kind} between {bound(low)} and {bound(high)}; got {shown(value)}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {bound(low)} and {bound(high)}; got {shown(value)}")


def check_choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {shown(value)}")


def bound(value: float) -> str:
    """A range's end as a refusal or a flag's help writes it: 5000, 0.5, 1e-07 (never 5000.0 or 5e+03)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def shown(value) -> str:
    """A value as an error message quotes it: never more than 40 characters of it."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
