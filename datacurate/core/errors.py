"""Errors a user can cause: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the input (missing folder, bad value); shown without a traceback."""


def cut(text: str, limit: int = 200) -> str:
    """`text` on one line and at most `limit` characters (a value echoed in an error may be megabytes)."""
    text = " ".join(str(text).split("\n"))
    if len(text) <= limit:
        return text
    head = text[:limit - 30]
    head = head.rsplit(" ", 1)[0] if " " in head[-40:] else head  # at a word's end where there is one nearby
    return f"{head}... ({len(text)} characters)"
