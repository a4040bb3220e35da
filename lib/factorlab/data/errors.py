"""Errors of the data layer."""


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or malformed; the message says how to get it."""
