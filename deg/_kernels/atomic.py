"""Atomic counters for numba kernels, cacheable like any kernel: threads running kernels side
by side claim work (``fetch_add``) and report it done (``fetch_add``, ``load_acquire``)."""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from deg._kernels._jit import jit


@intrinsic
def fetch_add(typingctx, counter, value):
    """Add ``value`` to ``counter[0]`` (int64, 1-D) atomically; return the value before.

    Sequentially consistent: a thread that counts its work done this way publishes the
    results it wrote before, to a thread that sees the count (``load_acquire``).
    """
    if not isinstance(counter, types.Array) or counter.dtype != types.int64 \
            or counter.ndim != 1 or not isinstance(value, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        arrty, valty = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [zero])
        add = context.cast(builder, args[1], valty, types.int64)
        return builder.atomic_rmw("add", ptr, add, "seq_cst")

    return types.int64(counter, value), codegen


@intrinsic
def load_acquire(typingctx, counter):
    """``counter[0]`` (int64, 1-D), read atomically with acquire ordering: what the thread that
    last added to it wrote before is visible after (see ``fetch_add``)."""
    if not isinstance(counter, types.Array) or counter.dtype != types.int64 \
            or counter.ndim != 1:
        return None

    def codegen(context, builder, signature, args):
        arrty, = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [zero])
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
