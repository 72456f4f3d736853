"""A software prefetch hint for numba kernels (``llvm.prefetch``), cacheable like any kernel."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LINE = 64


def _prefetch_lines(context, builder, arrty, ary, row, start, nbytes):
    """Prefetch the lines of bytes ``start .. start + nbytes`` of row ``row`` (clipped to the
    row)."""
    zero = context.get_constant(types.intp, 0)
    ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [row, zero])
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
    )
    base = builder.bitcast(ptr, i8p)
    row_bytes = builder.extract_value(ary.strides, 0)
    end = builder.add(start, nbytes)
    end = builder.select(builder.icmp_signed("<", end, row_bytes), end, row_bytes)
    step = context.get_constant(types.intp, _LINE)
    with cgutils.for_range_slice(builder, start, end, step) as (offset, _):
        # read access, high temporal locality, data cache
        builder.call(fn, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])


def _is_row_of(arr, *ints):
    return (
        isinstance(arr, types.Array)
        and arr.ndim == 2
        and all(isinstance(i, types.Integer) for i in ints)
    )


@intrinsic
def prefetch_head(typingctx, arr, row, nbytes):
    """Ask the CPU to start loading the first ``nbytes`` (at most the whole row, in cache
    lines) of row ``row`` of a 2-D C array.

    Random vector rows are the search's main cost (each is a cache miss); issuing the loads of
    all fresh neighbours before computing any distance overlaps their memory latency.
    """
    if not _is_row_of(arr, row, nbytes):
        return None

    def codegen(context, builder, signature, args):
        arrty, rowty, nty = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        limit = context.cast(builder, args[2], nty, types.intp)
        zero = context.get_constant(types.intp, 0)
        _prefetch_lines(context, builder, arrty, ary, r, zero, limit)
        return context.get_dummy_value()

    return types.void(arr, row, nbytes), codegen


@intrinsic
def prefetch_span(typingctx, arr, row, start, nbytes):
    """As ``prefetch_head`` for the bytes ``start .. start + nbytes`` of the row (``start``
    >= 0; the span is clipped to the row)."""
    if not _is_row_of(arr, row, start, nbytes):
        return None

    def codegen(context, builder, signature, args):
        arrty, rowty, sty, nty = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        lo = context.cast(builder, args[2], sty, types.intp)
        n = context.cast(builder, args[3], nty, types.intp)
        _prefetch_lines(context, builder, arrty, ary, r, lo, n)
        return context.get_dummy_value()

    return types.void(arr, row, start, nbytes), codegen
