"""Reading YAML configs into dataclasses with one-line typed errors: a missing or unreadable file, a
YAML that is not a mapping, an unknown key, or a value of the wrong type names the key, what was
expected and what was found (never a TypeError traceback from a constructor)."""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

from .errors import InputError


def read_yaml_mapping(path: Path, what: str) -> dict:
    """The YAML file at ``path`` as a dict (empty file: {})."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), what, "no such file" if not p.exists() else "not a file")
    try:
        d = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(str(p), what, f"text YAML cannot read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise InputError(str(p), f"{what} (a YAML mapping of keys to values)", f"a YAML {type(d).__name__}")
    return d


def _accepts(tp, value) -> bool:
    """Whether ``value`` (from YAML) fits the annotation ``tp``; nested dataclasses are checked by
    their own ``check_fields`` call."""
    if tp is typing.Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is not None:  # list[X], dict[K, V], tuple[...]: the container's type only
        tp = origin
    if dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is tuple:
        return isinstance(value, (list, tuple))
    return isinstance(value, tp)


def _describe(tp) -> str:
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")


def check_fields(cls, d, what: str) -> dict:
    """``d`` checked against the dataclass ``cls``: a mapping, known keys only, each value of its
    field's type. Returns the mapping for ``cls(**d)``, without null values of fields that cannot
    be null (they keep their defaults)."""
    if not isinstance(d, dict):
        raise InputError(what, f"a mapping of keys from {[f.name for f in dataclasses.fields(cls)]}",
                         f"a {type(d).__name__}: {d!r}"[:200])
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names), key=str)
    if unknown:
        raise InputError(what, f"keys from {names}", str(unknown))
    # a key with nothing after it (YAML null, e.g. every line under it commented out) keeps its default
    d = {k: v for k, v in d.items() if v is not None or _accepts(hints[k], None)}
    for k, v in d.items():
        if not _accepts(hints[k], v):
            hint = ""
            if isinstance(v, str) and _accepts(hints[k], 1.0):
                try:
                    float(v)
                    hint = " - YAML reads a number like 1e-3 as text: write 1.0e-3"
                except ValueError:
                    pass
            raise InputError(f"{what}: {k}", _describe(hints[k]) + hint, f"{v!r} ({type(v).__name__})"[:200])
    return d
