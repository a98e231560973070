"""Fine-tuning: models, freeze specs, parameter groups, stages, the loop, evaluate and predict.

Library entry points: datacurate.train.run.train, datacurate.train.evaluate.evaluate,
datacurate.train.predict.predict (not imported here, so the CLI starts without loading torch).
"""

from datacurate.api import callable_package  # noqa: E402 - last: `datacurate.train(ws, ...)` runs the stage

callable_package(__name__)
