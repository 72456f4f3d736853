"""An index's construction parameters: validated once, kept in files and pickles by name."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deg import _dtypes as dtypes
from deg import _quantizer as quantizer
from deg import _validation as check
from deg._kernels import build as kbuild
from deg._kernels.distances import METRIC_CODES

SCHEME_CODE = {
    "low-lid": kbuild.SCHEME_D,
    "high-lid": kbuild.SCHEME_C,
    "stream": kbuild.SCHEME_STREAM,
}
# what a file or pickle keeps (dim, metric and d are in its header or arrays)
SAVED = (
    "extend_k",
    "extend_eps",
    "scheme",
    "seed",
    "improve_k",
    "improve_eps",
    "max_path_length",
    "improve_tries",
    "rotate",
    "dtype",
    "quantize",
)


@dataclass(frozen=True)
class Params:
    """Everything that shapes an index besides its data (see ``Index`` for each)."""

    dim: int
    metric: str
    d: int
    extend_k: int
    extend_eps: float
    scheme: str
    seed: int
    improve_k: int
    improve_eps: float
    max_path_length: int
    improve_tries: int
    rotate: bool | None
    dtype: str = "float32"
    quantize: str | None = None

    @classmethod
    def make(
        cls,
        dim,
        metric,
        edges_per_vertex,
        extend_k,
        extend_eps,
        scheme,
        seed,
        improve_k,
        improve_eps,
        max_path_length,
        improve_tries,
        rotate,
        dtype="float32",
        quantize=None,
    ) -> Params:
        """Validated parameters (``ValueError``/``TypeError`` naming the first bad one); the
        defaults are ``Index``'s."""
        dim = check.check_int("dim", dim, minimum=1, maximum=check.MAX_DIM)
        metric = check.check_choice("metric", metric, check.METRICS)
        d = check.check_edges_per_vertex(edges_per_vertex)
        extend_k = 4 * d // 3 if extend_k is None else extend_k
        extend_k = check.check_int("extend_k", extend_k, minimum=1, maximum=check.MAX_EXTEND_K)
        extend_eps = check.check_float("extend_eps", extend_eps, minimum=0.0, maximum=check.MAX_EPS)
        scheme = check.check_choice("scheme", scheme, tuple(SCHEME_CODE))
        seed = check.check_int("seed", seed, minimum=0, maximum=check.MAX_SEED)
        improve_k = d if improve_k is None else improve_k
        improve_k = check.check_int("improve_k", improve_k, minimum=0, maximum=check.MAX_IMPROVE_K)
        improve_eps = check.check_float(
            "improve_eps", improve_eps, minimum=0.0, maximum=check.MAX_EPS
        )
        max_path_length = check.check_int(
            "max_path_length", max_path_length, minimum=0, maximum=check.MAX_PATH_LENGTH
        )
        improve_tries = check.check_int(
            "improve_tries", improve_tries, minimum=0, maximum=check.MAX_IMPROVE_TRIES
        )
        if rotate is not None and not isinstance(rotate, (bool, np.bool_)):
            raise TypeError(f"rotate must be True, False or None, got {rotate!r}")
        rotate = None if rotate is None else bool(rotate)
        dtype = check.check_choice("dtype", dtypes.name_of(dtype), dtypes.DTYPES)
        if dtypes.is_integer(dtype) and metric == "cosine":
            raise ValueError(
                f"metric='cosine' stores unit vectors, which dtype={dtype!r} cannot hold; use "
                f"dtype='float16' or 'float32', or metric='ip' on vectors you normalised"
            )
        if dtypes.is_integer(dtype) and rotate:
            raise ValueError(
                f"rotate=True stores rotated (non-integer) coordinates, which dtype={dtype!r} "
                f"cannot hold; use rotate=None or False"
            )
        quantize = check.check_choice("quantize", quantize, quantizer.KINDS)
        if quantize is not None and metric == "ip":
            raise ValueError(
                f"quantize={quantize!r} walks on codes whose distances keep the order of "
                f"'l2' and 'cosine' distances, not of inner products; use metric='l2' or "
                f"'cosine', or quantize=None"
            )
        return cls(
            dim,
            metric,
            d,
            extend_k,
            extend_eps,
            scheme,
            seed,
            improve_k,
            improve_eps,
            max_path_length,
            improve_tries,
            rotate,
            dtype,
            quantize,
        )

    @property
    def metric_code(self) -> int:
        return METRIC_CODES[self.metric]

    @property
    def scheme_code(self) -> int:
        return SCHEME_CODE[self.scheme]

    def saved(self) -> dict:
        """The parameters a file or pickle keeps, by name."""
        values = asdict(self)
        return {key: values[key] for key in SAVED}
