"""Stored coordinates as float32, whatever the type an index keeps them in (``Index(dtype=)``).

Distances are always summed in float32. ``float32`` rows are read as they are, ``uint8`` and
``int8`` rows convert exactly, and ``float16`` rows are kept as their IEEE half bits in
``uint16`` (numba has no float16 arrays on the CPU) and widened here, without a branch so that
the distance loops stay vectorised. Every kernel reads a stored coordinate through ``f32``:
arithmetic straight on ``uint8`` would wrap.
"""

import numpy as np
from numba import types
from numba.extending import overload

# 2**112: moves a half's exponent bias (15) to a single's (127); times it, the half's
# magnitude bits shifted into a single's place give the value, subnormals included
_REBIAS = np.float32(2.0**112)


def f32(x):
    """``x`` (a stored coordinate) as float32; half bits (uint16) are decoded."""
    if isinstance(x, np.uint16):
        return np.uint16(x).view(np.float16).astype(np.float32)
    return np.float32(x)


@overload(f32, inline="always")
def _f32(x):
    if x == types.uint16:

        def widen_half(x):
            h = np.uint32(x)
            mag = np.uint32((h & np.uint32(0x7FFF)) << np.uint32(13)).view(np.float32) * _REBIAS
            sign = (h & np.uint32(0x8000)) << np.uint32(16)
            return np.uint32(np.float32(mag).view(np.uint32) | sign).view(np.float32)

        return widen_half
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: x
    if isinstance(x, (types.Integer, types.Float)):
        return lambda x: np.float32(x)
    return None
