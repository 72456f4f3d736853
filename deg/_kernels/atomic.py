"""Atomic counters for numba kernels, cacheable like any kernel: threads running kernels side
by side claim work (``fetch_add``) and report it done (``fetch_add``, ``load_acquire``)."""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from deg._kernels._jit import jit


def _is_counter(arr):
    """A counter is a 1-D int64 array; its first item counts."""
    return isinstance(arr, types.Array) and arr.dtype == types.int64 and arr.ndim == 1


def _first_item(context, builder, arrty, arr):
    """A pointer to ``arr[0]``."""
    ary = context.make_array(arrty)(context, builder, arr)
    zero = context.get_constant(types.intp, 0)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [zero])


@intrinsic
def fetch_add(typingctx, counter, value):
    """Add ``value`` to ``counter[0]`` (int64, 1-D) atomically; return the value before.

    Sequentially consistent: a thread that counts its work done this way publishes the
    results it wrote before, to a thread that sees the count (``load_acquire``).
    """
    if not _is_counter(counter) or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ptr = _first_item(context, builder, signature.args[0], args[0])
        add = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, add, "seq_cst")

    return types.int64(counter, value), codegen


@intrinsic
def load_acquire(typingctx, counter):
    """``counter[0]`` (int64, 1-D), read atomically with acquire ordering: what the thread that
    last added to it wrote before is visible after (see ``fetch_add``)."""
    if not _is_counter(counter):
        return None

    def codegen(context, builder, signature, args):
        ptr = _first_item(context, builder, signature.args[0], args[0])
        return builder.load_atomic(ptr, "acquire", 8)

    return types.int64(counter), codegen


@jit("boolean(int64[::1], int64, int64)")
def wait_until(counter, value, spins):
    """Spin until ``counter[0]`` reaches ``value`` (True), or give up after ``spins`` reads
    (False: the caller blocks instead). Waking a blocked Python thread costs tens of us, as
    much as a small search itself."""
    for _ in range(spins):
        if load_acquire(counter) >= value:
            return True
    return load_acquire(counter) >= value
