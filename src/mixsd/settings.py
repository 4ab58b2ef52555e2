"""Shared defaults, and the one way a stage's config dataclass becomes command-line flags.

A config field is the only definition of a setting: its type, its default and
its help text (`setting(...)`). `add_arguments` turns the fields into flags
(`lam` -> `--lam`, `bool` -> a switch), so `--help` and the Python API cannot
drift apart; `from_args` builds the config back, and a `--config` YAML file
gives values for the same keys, which flags override (TRL's `TrlParser` does the
same). Importing this module loads nothing heavy.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from mixsd.errors import MixsdError
from mixsd.io import check_file

DEFAULT_MODEL = "smollm2-135m"
MODEL_HELP = "base model: alias, local directory, .gguf file or hub id"
DEFAULT_LAM = 0.3  # the authors' recommendation (0.3-0.5)
DEFAULT_MAX_NEW_TOKENS = 64  # KGFact and KGFunc answers fit; also the evaluation's answer budget

Decode = Literal["auto", "eager", "static"]  # the decode loop's KV storage (targets/engine.py, targets/static.py)

C = TypeVar("C")


def decode_setting(what: str) -> Any:
    """The `--decode` field, shared by the stages that decode."""
    return setting(
        "auto",
        f"{what}: eager (a dynamic KV cache, the reference) or static (fixed slots in a ring cache, one step "
        "compiled with CUDA graphs on CUDA); auto: static on CUDA",
    )


def check_choices(config: Any) -> None:
    """Every `Literal` field holds one of its choices: the annotation is the one list of them, for flags (argparse),
    YAML (`coerce`) and the Python API alike."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        kind, choices = _kind(hints[f.name])
        value = getattr(config, f.name)
        if choices is not None and not _fits(value, hints[f.name], kind, choices):
            raise MixsdError(f"{flag_name(f)} must be one of {', '.join(map(str, choices))}, got {value!r}")


def setting(default: Any = MISSING, help: str = "", *, flag: str | None = None, cli: bool = True) -> Any:
    """A config field with its help text; `flag` renames its CLI flag, `cli=False` keeps it off the CLI."""
    return field(default=default, metadata={"help": help, "flag": flag, "cli": cli})


@dataclass(kw_only=True)
class Placement:
    """Where a stage's model runs: the flags of the stages that load a model to decode or score with."""

    dtype: str = setting("auto", "auto: float32 on CPU, bfloat16 on CUDA")
    device: str | None = setting(None, "default: cuda if available, else cpu")


def section(help: str) -> Any:
    """A mapping field (YAML only), e.g. the per-stage settings of `inject`."""
    return field(default_factory=dict, metadata={"help": help, "cli": False})


def cli_fields(cls: type) -> list[Field]:
    """The fields that are flags, a stage's own first and the shared ones (keyword-only mixins) after."""
    return sorted((f for f in fields(cls) if f.metadata.get("cli", True)), key=lambda f: f.kw_only is True)


def flag_name(f: Field) -> str:
    return "--" + (f.metadata.get("flag") or f.name).replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> argparse.ArgumentParser:
    """One flag per field of `cls`, plus `--config FILE` for a YAML file of the same keys."""
    hints = typing.get_type_hints(cls)
    for f in cli_fields(cls):
        kind, choices = _kind(hints[f.name])
        default = argparse.SUPPRESS if f.default is MISSING else f.default  # so that a YAML value can fill it
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": f.metadata.get("help") or " "}
        if kind is bool:
            kwargs["action"] = "store_true" if default is False else argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is list:  # one value or several: `--facts r1.jsonl r2.jsonl`
            kwargs.update(nargs="+", type=typing.get_args(kind)[0], metavar=f.name.upper())
        else:
            kwargs.update(type=kind, choices=choices, metavar=None if choices else f.name.upper())
        if f.default is MISSING:
            kwargs["help"] += " (required)"
        parser.add_argument(flag_name(f), **kwargs)
    parser.add_argument(
        "--config", metavar="YAML", help="settings from a YAML file with these keys; flags override them"
    )
    parser.set_defaults(config_class=cls, subparser=parser)
    return parser


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each flag's default, where it has a value worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if any(action.default is hidden for hidden in (None, False, argparse.SUPPRESS)):  # not `in`: 0 == False
            return action.help
        return super()._get_help_string(action)


def from_args(cls: type[C], args: argparse.Namespace) -> C:
    """The config that the parsed flags (and YAML-only sections) describe; a missing required value is an error."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    missing = [flag_name(f) for f in cli_fields(cls) if f.default is MISSING and values.get(f.name) is None]
    if missing:
        raise MixsdError(f"missing {missing[0]} (a flag, or its key in --config)")
    try:
        return cls(**values)
    except MixsdError as e:
        if e.path is None and getattr(args, "config", None):  # the bad value may come from the YAML file
            raise MixsdError(str(e), path=args.config) from None
        raise


def apply_yaml(parser: argparse.ArgumentParser, cls: type, path: str) -> None:
    """Make the YAML file's values the parser's defaults, so flags given on the command line still win."""
    try:
        parser.set_defaults(**mapping(cls, load_yaml(path)))
    except MixsdError as e:
        raise MixsdError(str(e), path=e.path or path) from None


def mapping(cls: type | set[str], values: Any, where: str = "", owned: set[str] = frozenset()) -> dict[str, Any]:
    """Settings given as a mapping (a YAML file, an `inject` section, a sweep grid entry) as `cls`'s field values:
    keys with dashes or underscores, none unknown (or `owned` by the caller), each value of its field's type. A set
    of names instead of a class checks the keys alone."""
    if not isinstance(values, dict):
        raise MixsdError(f"expected a mapping of settings{where}, got {values!r}")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    allowed = sorted((cls if isinstance(cls, set) else {f.name for f in fields(cls)}) - owned)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise MixsdError(f"unknown key {unknown[0]!r}{where}; valid keys: {', '.join(allowed)}")
    return values if isinstance(cls, set) else coerce(cls, values)


def coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """A YAML mapping's values checked against the fields' types (flags are checked by argparse; YAML values are
    not), and numbers written as text converted: YAML 1.1 reads `3e-4` as a string."""
    hints, out = typing.get_type_hints(cls), {}
    for key, value in values.items():
        hint = hints[key]
        kind, choices = _kind(hint)
        if isinstance(value, str) and typing.get_origin(kind) is list:
            value = [value]  # `facts: data/x` in YAML: a list of one
        if isinstance(value, str) and kind in (int, float):
            try:
                value = kind(value)
            except ValueError:
                raise MixsdError(f"{key}: expected {kind.__name__}, got {value!r}") from None
        if not _fits(value, hint, kind, choices):
            wanted = " or ".join(map(repr, choices)) if choices else getattr(kind, "__name__", str(kind))
            raise MixsdError(f"{key}: expected {wanted}, got {value!r}")
        out[key] = value
    return out


def _fits(value: Any, hint: Any, kind: Any, choices: list | None) -> bool:
    if value is None:
        return type(None) in typing.get_args(hint)
    if choices is not None:
        return value in choices
    base = typing.get_origin(kind) or kind
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is list:
        return isinstance(value, list) and all(isinstance(v, typing.get_args(kind)[0]) for v in value)
    return not isinstance(base, type) or isinstance(value, base)


def load_yaml(path: str) -> dict[str, Any]:
    check_file(Path(path), "YAML")
    try:
        values = yaml.safe_load(Path(path).read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise MixsdError(f"not UTF-8 (byte {e.start})", path=path) from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise MixsdError(
            f"not valid YAML: {getattr(e, 'problem', e)}", path=path, line=None if line is None else line + 1
        ) from None
    if not isinstance(values, dict):
        raise MixsdError("expected a mapping of settings", path=path)
    return values


def _kind(hint: Any) -> tuple[type, list | None]:
    """(the type argparse converts to, the allowed values) of a field's annotation, `X | None` unwrapped."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = list(typing.get_args(hint))
        return type(choices[0]), choices
    return hint, None
