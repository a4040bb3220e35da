"""What the run store already holds for a grid: the chapters read records, never train.

Every function here only looks records up (:meth:`factorlab.results.RunStore.get`); a config
without a record is simply missing from the answer, so a chapter can say "not measured"."""
from __future__ import annotations


def registered(name: str) -> bool:
    """Whether ``name`` is a registered experiment."""
    from factorlab.experiments import EXPERIMENTS

    return name in EXPERIMENTS


def grid_configs(name: str, profile: str, where: dict | None = None) -> list[dict]:
    """The config dicts of ``name``'s grid under ``profile``, in grid order, keeping only those
    whose values equal ``where``'s (every config when None); ``[]`` for a name that is not
    registered."""
    from factorlab.experiments import get

    if not registered(name):
        return []
    configs = [c.to_dict() for c in get(name).grid(profile)]
    return [c for c in configs if all(c.get(k) == v for k, v in (where or {}).items())]


def stored_records(configs: list[dict], store=None) -> tuple[list[dict], bool]:
    """The records ``store`` (default: :class:`~factorlab.results.RunStore` of the environment)
    holds for ``configs``, in their order, and whether every config has one (False for no
    configs). Never trains."""
    from factorlab.results import RunStore

    store = store if store is not None else RunStore()
    got = [store.get(c) for c in configs]
    have = [r for r in got if r is not None]
    return have, bool(got) and len(have) == len(got)


def cached_records(name: str, profile: str, store=None, where: dict | None = None) -> tuple[list[dict], bool]:
    """The records of ``name``'s grid under ``profile`` (only the configs whose values equal
    ``where``'s, when given) that the run store holds, in grid order, and whether that grid is
    complete (every config has a record). Never trains; ``([], False)`` for a name that is not
    registered."""
    return stored_records(grid_configs(name, profile, where), store)
