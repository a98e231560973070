"""Errors a user can cause: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the input (missing folder, bad value); shown without a traceback."""


def cut(text: str, limit: int = 200) -> str:
    """`text` on one line and at most `limit` characters (a value echoed in an error may be megabytes)."""
    text = " ".join(str(text).split("\n"))
    return text if len(text) <= limit else f"{text[:limit - 30]}... ({len(text)} characters)"
