"""Typed run configs: a dataclass per experiment that serialises to the plain dict the run
store hashes (:func:`factorlab.results.config_hash`).

A subclass of :class:`RunConfig` is a ``@dataclass(kw_only=True)`` whose fields are the keys of
the experiment's config. :meth:`RunConfig.to_dict` gives exactly the dict that is hashed (a deep
copy of the field values, every field a key, except the fields of ``OMIT_AT_DEFAULT`` while they
hold their default: a key added to an experiment later, which configs made before it lack);
:meth:`RunConfig.from_dict` rebuilds the config from such a dict, checking its keys and the
types of its values (ValueError naming the key). Nested values (a training recipe, model
keyword arguments) stay plain JSON dicts and lists.

Example::

    @dataclass(kw_only=True)
    class Config(RunConfig):
        experiment: str
        profile: Profile
        width: float
        dirac: bool = True
        OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("dirac",)

    Config(experiment="x", profile="cpu", width=0.5).to_dict()
    # {"experiment": "x", "profile": "cpu", "width": 0.5}
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from typing import Any, ClassVar, Literal, Mapping, TypeVar

#: The three budgets (DESIGN.md, "Profiles"), as a type of config fields.
Profile = Literal["smoke", "cpu", "full"]

C = TypeVar("C", bound="RunConfig")


def _describe(hint: Any) -> str:
    """A short readable name of a type hint (``int | None``, ``list[str]``, ``'a' | 'b'``)."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in typing.get_args(hint))
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_describe(a) for a in typing.get_args(hint))}]"
    return getattr(hint, "__name__", str(hint))


def matches(value: Any, hint: Any) -> bool:
    """Whether the JSON value ``value`` has the type ``hint``: ``Any``, None, bool, int,
    float (an int counts: JSON writes 4.0 as written), str, ``list[X]``, ``dict[str, X]``,
    ``Literal[...]`` and unions of these. A bool is not an int here (JSON tells them apart)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(hint))
    if origin is list or hint is list:
        args = typing.get_args(hint)
        return type(value) is list and (not args or all(matches(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        args = typing.get_args(hint)
        return type(value) is dict and all(type(k) is str for k in value) and \
            (not args or all(matches(v, args[1]) for v in value.values()))
    if hint is float:
        return type(value) in (int, float)
    if hint in (bool, int, str):
        return type(value) is hint
    raise TypeError(f"config fields may not have the type {hint!r}")


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _name(cls: type) -> str:
    """``module.Class`` (the module's last part), e.g. ``mnist_baselines.Config``."""
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__.rsplit('.', 1)[-1]}"


@dataclasses.dataclass(kw_only=True)
class RunConfig:
    """Base of the typed configs (see the module docstring). Subclasses are
    ``@dataclass(kw_only=True)``; every field is checked against its annotation on
    construction (ValueError naming the field, its type and the value)."""

    #: Fields that are keys of :meth:`to_dict` only when they differ from their default.
    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not matches(value, hints[f.name]):
                raise ValueError(f"{_name(type(self))}.{f.name} must be {_describe(hints[f.name])}, got {value!r}")

    def to_dict(self) -> dict:
        """The canonical config dict (what is hashed): a deep copy of every field, leaving out
        the fields of ``OMIT_AT_DEFAULT`` that hold their default."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.OMIT_AT_DEFAULT and value == f.default:
                continue
            out[f.name] = copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """The config whose :meth:`to_dict` is ``data``.

        Raises:
            ValueError: ``data`` has keys the config does not know, lacks required ones,
                spells out a key of ``OMIT_AT_DEFAULT`` at its default (which
                :meth:`to_dict` leaves out, so the hash would change), or holds a value of
                the wrong type; the message names the keys and the valid ones.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{_name(cls)}.from_dict needs a dict, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = {n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        unknown, missing = sorted(set(data) - set(fields)), sorted(required - set(data))
        if unknown or missing:
            parts = ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing keys {missing}"] if missing else [])
            raise ValueError(f"{_name(cls)}: {'; '.join(parts)}; its keys are {sorted(fields)}")
        for name in cls.OMIT_AT_DEFAULT:
            if name in data and data[name] == fields[name].default:
                raise ValueError(f"{_name(cls)}: key {name!r} is written only when it is not "
                                 f"{fields[name].default!r}; leave it out")
        return cls(**copy.deepcopy(dict(data)))

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes`` applied (checked like a new config)."""
        return dataclasses.replace(self, **changes)
