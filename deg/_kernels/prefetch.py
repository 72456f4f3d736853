"""A software prefetch hint for numba kernels (``llvm.prefetch``), cacheable like any kernel."""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_LINE = 64


@intrinsic
def prefetch_head(typingctx, arr, row, nbytes):
    """Ask the CPU to start loading the first ``nbytes`` (at most the whole row, in cache
    lines) of row ``row`` of a 2-D C array.

    Random vector rows are the search's main cost (each is a cache miss); issuing the loads of
    all fresh neighbours before computing any distance overlaps their memory latency.
    """
    if (
        not isinstance(arr, types.Array)
        or arr.ndim != 2
        or not isinstance(row, types.Integer)
        or not isinstance(nbytes, types.Integer)
    ):
        return None

    def codegen(context, builder, signature, args):
        arrty, rowty, nty = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        r = context.cast(builder, args[1], rowty, types.intp)
        limit = context.cast(builder, args[2], nty, types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, [r, zero])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0"
        )
        base = builder.bitcast(ptr, i8p)
        row_bytes = builder.extract_value(ary.strides, 0)
        end = builder.select(builder.icmp_signed("<", limit, row_bytes), limit, row_bytes)
        step = context.get_constant(types.intp, _LINE)
        with cgutils.for_range_slice(builder, zero, end, step) as (offset, _):
            # read access, high temporal locality, data cache
            builder.call(fn, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, row, nbytes), codegen
