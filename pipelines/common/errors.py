"""Errors a user caused (bad arguments, missing paths, bad config): `lvd` prints them as
one line and exits 2. Anything else is a bug and keeps its traceback."""


class UsageError(Exception):
    """A problem with what the user asked for, phrased for the user."""


class CommandFailed(Exception):
    """The work itself failed (a Ray worker, a stage): one line for the user, pointing at
    the full log; `lvd` exits 1."""
