"""The one decorator every kernel uses.

``cache=True`` so a second process loads machine code instead of compiling; ``nogil=True`` so
Python threads can run kernels side by side; a fastmath *subset*: ``reassoc``/``contract`` let
LLVM vectorise the distance reductions, while leaving out ``nnan``/``ninf`` keeps ``inf``
comparisons (the search radius starts at +inf) correct.
"""

import functools
import os

import numba

FASTMATH = frozenset({"reassoc", "contract", "nsz", "arcp"})
CACHE = os.environ.get("DEG_NUMBA_CACHE", "1") != "0"

jit = functools.partial(numba.njit, cache=CACHE, nogil=True, fastmath=set(FASTMATH))
