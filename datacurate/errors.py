"""Errors a user can cause: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the input (missing folder, bad value); shown without a traceback."""
