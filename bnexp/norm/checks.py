"""What every normalisation layer here shares: argument checks with Keras' wording, the
float32 upcast of half-precision moments, and the count of values per channel."""

from __future__ import annotations

import math
import numbers

from bnexp.backend import tensorflow

tensorflow()  # TensorFlow first, quietly, before Keras imports it

from keras import ops  # noqa: E402


def upcast(x):
    """float16 moments lose precision (and overflow in the sum of squares): compute them in float32."""
    return ops.cast(x, "float32") if x.dtype in ("float16", "bfloat16") else x


def check_number(name, value, within, allowed: str):
    """Refuse `value` unless it is a real number (not a bool) and `within(value)` holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not within(value):
        raise ValueError(f"{name} must be {allowed}, not {value!r}")


def check_affine(epsilon, center, scale):
    """Refuse what no normalisation can use: ε must be a positive number (it keeps sqrt(var + ε)
    away from 0), and `center`/`scale` are switches, so booleans.

    Keras' own normalisation layers check less (its BatchNormalization takes momentum=1.5 or
    epsilon=0 silently); these checks follow its wording, `ValueError` naming the argument.
    """
    check_number("epsilon", epsilon, lambda e: 0 < e < math.inf, "a positive number")
    for name, value in (("center", center), ("scale", scale)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, not {value!r}")


def positions(x):
    """How many values each channel has in `x`: every axis but the last (m, or m·p·q for a
    conv layer's (m, p, q, C) output), as a tensor when the batch size is only known at run time."""
    count = 1
    for size in ops.shape(x)[:-1]:
        count = count * size
    return count


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
