"""Checks of the code base itself (not used by the library): :mod:`~factorlab.devtools.layering`."""
