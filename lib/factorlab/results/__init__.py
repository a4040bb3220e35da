"""The run store and provenance: every reported number has a record (DESIGN.md, "The run
store").

- :func:`config_hash` / :func:`canonical_json`: a run's key, stable across processes.
- :class:`RunStore` / :func:`run`: the record of a config, from disk or trained and written
  atomically; ``FACTORLAB_REQUIRE_CACHED=1`` turns a missing run into :class:`RunNotCachedError`.
- :func:`provenance`: git state, library versions, device, profile and times of a run.
- :func:`provenance_table` / :func:`records_frame`: records as pandas tables for the book.
"""
from factorlab.results.hashing import canonical_json, check_config, config_hash
from factorlab.results.provenance import code_version, describe_device, git_state, library_versions, provenance
from factorlab.results.load import live_runs, live_trainings, load_snapshot, load_summary
from factorlab.results.store import (DirtyTreeError, RunNotCachedError, RunRecordError, RunStore, allow_dirty,
                                     default_store, require_cached, run, to_jsonable)
from factorlab.results.tables import provenance_table, records_frame

__all__ = ["DirtyTreeError", "allow_dirty", "live_runs", "live_trainings", "load_snapshot", "load_summary", "RunNotCachedError", "RunRecordError", "RunStore", "canonical_json", "check_config",
           "code_version", "config_hash", "default_store", "describe_device", "git_state", "library_versions",
           "provenance", "provenance_table", "records_frame", "require_cached", "run", "to_jsonable"]
