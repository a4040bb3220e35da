"""The run store and provenance: every reported number has a record (DESIGN.md)."""
from factorlab.results.hashing import canonical_json, config_hash
from factorlab.results.provenance import describe_device, git_state, library_versions, provenance
from factorlab.results.store import RunNotCachedError, RunStore, default_store, require_cached, run
from factorlab.results.tables import provenance_table, records_frame

__all__ = ["RunNotCachedError", "RunStore", "canonical_json", "config_hash", "default_store",
           "describe_device", "git_state", "library_versions", "provenance", "provenance_table",
           "records_frame", "require_cached", "run"]
