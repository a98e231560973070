
from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.clean(ws, ...)` runs the stage

callable_package(__name__)
