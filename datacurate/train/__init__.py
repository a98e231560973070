"""Fine-tuning: models, freeze specs, parameter groups, stages, the loop, evaluate and predict.

Library entry points: datacurate.train.run.train, datacurate.train.evaluate.evaluate,
datacurate.train.predict.predict (not imported here, so the CLI starts without loading torch).
The package called, `datacurate.train(ws, ...)`, is the Python API's function (datacurate/api.py makes it so).
"""

from typing import Any


def train(ws, flags: dict[str, Any], **kwargs) -> Any:
    """The train stage for other stages (vet --train-first): see datacurate.train.run.train (returns its TrainResult)."""
    from datacurate.train.run import train as _train

    return _train(ws, flags, **kwargs)
