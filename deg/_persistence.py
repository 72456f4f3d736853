"""An index's parts to and from a file or a pickle (``deg.fileformat`` reads and checks the
bytes), and the upgrades of files written by earlier versions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from deg import _calibration as calibration
from deg import _dtypes as dtypes
from deg import _params
from deg import _quantizer as quantizer
from deg import _validation as check
from deg._entries import TYPES
from deg._kernels import view as kview


class Saved(NamedTuple):
    """What a file keeps beside the construction parameters."""

    next_label: int
    drawn_at: int  # the size of the graph the entry tree was drawn over
    rand_state: int  # the improvement tries' random stream
    quantizer: dict | None = None  # the code map of a quantized index, once fitted
    calibrations: tuple = ()  # recall-target calibrations (``_calibration.Table``)


def to_dict(params, store, tree, rand_state, quant=None) -> dict:
    """Everything besides the arrays that a saved or pickled index needs."""
    out = params.saved()
    out.update(
        next_label=store.next_label, rand_state=int(rand_state[0]), entries_drawn_at=tree.drawn_at
    )
    if quant is not None and quant.fitted:
        out["quantizer"] = quant.state()
    return out


def from_dict(params: dict, a: dict, metric: str, source: str) -> tuple:
    """The ``Index`` keyword arguments and the ``Saved`` values of a parameter block beside
    the arrays ``a``, checked in that order (``ValueError`` naming what is missing or out of
    bounds)."""
    n, dim = a["vectors"].shape
    try:
        later = ("rotate", "dtype", "quantize")  # keys that files before them lack
        kwargs = {key: params[key] for key in _params.SAVED if key not in later}
        kwargs["rotate"] = params.get("rotate", False)  # files before rotate: False
        kwargs["dtype"] = params.get("dtype", "float32")
        kwargs["quantize"] = params.get("quantize")
        if type(kwargs["seed"]) is int:  # before seeds were bounded, -1 meant what 2**64-1 does
            kwargs["seed"] %= 2**64
        kwargs = dict(dim=dim, metric=metric, edges_per_vertex=a["neighbors"].shape[1], **kwargs)
        made = _params.Params.make(**kwargs)
        if a["vectors"].dtype != dtypes.STORED[made.dtype]:
            raise ValueError(
                f"its vectors are {a['vectors'].dtype}, a dtype={made.dtype!r} index keeps "
                f"{dtypes.STORED[made.dtype]}"
            )
        saved = Saved(
            check.check_int(
                "next_label", params["next_label"], minimum=0, maximum=check.MAX_LABEL + 1
            ),
            check.check_int(  # named pivots_drawn_at before the entry tree
                "entries_drawn_at",
                params.get("entries_drawn_at", params.get("pivots_drawn_at", n)),
                minimum=0,
                maximum=check.MAX_VERTICES,
            ),
            check.check_int("rand_state", params["rand_state"], minimum=0, maximum=2**64 - 1),
            params.get("quantizer"),
            _calibrations(params.get("calibration", []), made.d),
        )
        why = quantizer.Quantizer.check_state(saved.quantizer, dim, made.quantize)
        if why is None and saved.quantizer is not None and made.quantize is None:
            why = "it has a quantizer state but quantize=None"
        if (
            why is None
            and saved.quantizer is None
            and made.quantize is not None
            and n >= quantizer.MIN_VECTORS
        ):
            why = f"quantize={made.quantize!r} with {n} vectors but no quantizer state"
        if why is not None:
            raise ValueError(why)
    except KeyError as e:
        raise ValueError(f"{source} has invalid parameters: {e.args[0]!r} is missing") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source} has invalid parameters: {e}") from None
    return kwargs, saved


def _calibrations(rows, d: int) -> tuple:
    if not isinstance(rows, list) or len(rows) > calibration.MAX_TABLES:
        raise ValueError(f"calibration must be a list of at most {calibration.MAX_TABLES}")
    tables = tuple(calibration.from_json(row, d) for row in rows)
    keys = {(t.method, t.k) for t in tables}
    if len(keys) != len(tables):
        raise ValueError("calibration holds two tables for one method and k")
    return tables


def pickled_arrays(store, basis_, tree) -> dict:
    """Copies of the arrays a pickle carries (as a file holds them)."""
    n = store.n
    arrays = {
        name: np.array(a[:n])
        for name, a in zip(("vectors", "neighbors", "weights", "labels"), store.arrays())
    }
    arrays["sig"] = store.file_signatures()
    arrays.update(rotation=basis_.yt.copy(), rotation_t=basis_.tt.copy())
    arrays.update(zip(TYPES, (a.copy() for a in tree.arrays())))
    return arrays


def restore(store, basis_, tree, quant, seed, a: dict, read_only: bool, saved: Saved) -> None:
    """Fill new parts with validated arrays ``a`` (a file's or a pickle's); with
    ``read_only`` the storage keeps ``a``'s arrays (a copy-on-write map) instead of copying.
    A quantized index's codes are encoded again from its vectors (the same bytes); edge
    codes at the first coded search."""
    n = a["vectors"].shape[0]
    nb, w, sig = _view_rows(a, n)
    store.adopt(a["vectors"], nb, w, a["labels"], sig, read_only, saved.next_label)
    if saved.quantizer is not None:
        quant.restore(saved.quantizer)
        quantizer.encode_rows(quant, store, 0, n)
    if "rotation" in a:
        basis_.adopt(a["rotation"], a["rotation_t"])
    if "pairs" in a:  # the saved tree, renumbered by removals as it was
        tree.adopt(a, saved.drawn_at)
    else:  # files before the tree or before its pairs (version 4): draw it
        tree.redraw_for(store, basis_, seed, min(saved.drawn_at, n))


def _view_rows(a: dict, n: int) -> tuple:
    """Neighbour and weight rows in search-view order, and their signatures: versions 2-5
    stored sorted rows and their order, version 1 no order (every row is ordered on load)."""
    nb, w, sig = a["neighbors"], a["weights"], a.get("sig")
    if "order" in a:
        order = a["order"].astype(np.intp)
        nb = np.take_along_axis(nb, order, axis=1)
        w = np.take_along_axis(w, order, axis=1)
        sig = np.empty(n, dtype=np.uint32)
        kview.sign_rows(nb, n, sig)
    elif sig is None:
        sig = np.full(n, kview.EMPTY_SIG, dtype=np.uint32)
    return nb, w, sig
