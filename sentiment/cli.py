"""What the command-line entry points share: dataclass fields as flags and one-line errors."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import MISSING, fields

from .config import USER_ERRORS, bound


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (),
                        about: str = "each flag overrides the preset's value", defaults: bool = False) -> None:
    """One `--flag` per declared field of `cls` (sentiment/config.py), typed from its default, its hint, range or
    choices as help (and, with `defaults`, the field's default: where no preset sets them); booleans become switches
    (--titles / --no-titles)."""
    group = parser.add_argument_group(cls.__name__, about)
    for f in fields(cls):
        if f.name in skip or "setting" not in f.metadata:
            continue
        spec, flag = f.metadata["setting"], "--" + f.name.replace("_", "-")
        bounds = f"; {bound(spec.low)} to {bound(spec.high)}" if spec.low is not None else ""
        default = f"; default {f.default}" if defaults and f.default not in (None, "") else ""
        shown = f"{spec.label}: {spec.hint}{bounds}{default}".replace("%", "%%")
        if isinstance(f.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=shown)
        elif spec.choices:
            group.add_argument(flag, choices=spec.choices, default=None, help=shown)
        else:
            kind = _flag_type(f)
            group.add_argument(flag, type=kind, default=None, metavar=kind.__name__.upper(), help=shown)


def _flag_type(f) -> type:
    """The type of a field's default, or for an optional field (default None) the first type it names."""
    if f.default is MISSING:
        return str
    if f.default is None:
        return {"int": int, "float": float}.get(str(f.type).split("|")[0].strip(), str)
    return type(f.default)


def overrides(args: argparse.Namespace, cls: type) -> dict:
    """The flags of `cls` the user actually gave."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}


def run(main: Callable[[], int | None]) -> None:
    """Run a CLI main; a bad file, flag or checkpoint ends with one line on stderr and exit code 2."""
    try:
        code = main()
    except USER_ERRORS as e:
        sys.stderr.write(f"\nerror: {e}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        sys.exit(130)
    sys.exit(code or 0)
