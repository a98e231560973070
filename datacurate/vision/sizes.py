"""The input sizes an architecture can take (no torch import: the option models check them)."""

from __future__ import annotations

from datacurate.core.errors import UserError

# Architectures that take one input size only, or need a smallest one (measured with torchvision's
# models on a zero batch: below it a pooling or convolution has nothing left to work on).
EXACT_SIZE = {"vit_b_16": 224, "vit_b_32": 224, "vit_l_16": 224, "vit_l_32": 224, "maxvit_t": 224}
MIN_SIZE = {"inception_v3": 75, "alexnet": 63, "vgg": 32, "convnext": 32, "densenet": 29, "squeezenet1_0": 21,
            "squeezenet1_1": 17}


def check_input_size(arch: str, size: int, what: str) -> None:
    """UserError naming the size `arch` needs when `size` (the crop, `what`) cannot go through it."""
    exact = EXACT_SIZE.get(arch)
    if exact is not None and size != exact:
        raise UserError(f"{what} {size}: {arch} takes images of exactly {exact} pixels (--img-size {exact})")
    least = next((v for k, v in MIN_SIZE.items() if arch == k or (arch.startswith(k) and k.isalpha())), None)
    if least is not None and size < least:
        raise UserError(f"{what} {size}: {arch} needs images of at least {least} pixels (--img-size {least} or more)")
