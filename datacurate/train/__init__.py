"""Fine-tuning: models, freeze specs, parameter groups, stages, the loop, evaluate and predict.

Library entry points: datacurate.train.run.train, datacurate.train.evaluate.evaluate,
datacurate.train.predict.predict (not imported here, so the CLI starts without loading torch).
"""

from typing import Any


def train(ws, flags: dict[str, Any], **kwargs) -> Any:
    """The train stage for other stages (vet --train-first): see datacurate.train.run.train (returns its TrainResult)."""
    from datacurate.train.run import train as _train

    return _train(ws, flags, **kwargs)


from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.train(ws, ...)` runs the stage

callable_package(__name__)
