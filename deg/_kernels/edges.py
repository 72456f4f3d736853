"""Edge codes (``Index(quantize="rabitq")``, docs/algorithm.md §3.8): a 1-bit code of every
edge, kept with its vertex, and the range search that walks on their estimates.

The code of edge u-v is the sign pattern of ``y_v - y_u``, where ``y = R(x - mean)`` and R is
a random rotation (signs, then Hadamard transforms; ``spin``). With u as the centre, RaBitQ's
estimator (Gao & Long, SIGMOD'24) gives ``<t, r> ~ |r|^2 * sum_i s_i t_i / sum_i |r_i|`` for
``r = y_v - y_u``, ``t = y_q - y_u`` and ``s`` the signs, so

    |q - x_v|^2 = |q - x_u|^2 + |r|^2 - 2 <t, r>
                ~ |q - x_u|^2 + A - 2 B (2 sum_{s_i > 0} y_q,i - sum_i y_q,i)

with ``A = |r|^2 + 2 B sum_i s_i y_u,i`` and ``B = |r|^2 / sum_i |r_i|`` kept per edge
(``factors``). The query's coordinates are rounded to 4 bits once per query (``planes``),
so the sum over an edge's positive signs is four popcounts per 64 coordinates, eight edges
side by side (``score``). When the walk expands u it has just computed ``|q - x_u|^2``
exactly (the stored vector), so every neighbour's estimate costs no vector read; a vertex
enters the candidates by its estimate and the results by its exact distance. This is the
layout of SymphonyQG (Gou et al., SIGMOD'25) over the DEG graph and its range search.

Each row's codes are a function of the row's ids and of the vectors behind them, so they
are kept like the search view (``view``): ``esig[u]`` is the row's signature when it was
encoded, and only rows whose signature changed are encoded again (``encode_rows``).
"""

import numpy as np

from deg._kernels._jit import jit
from deg._kernels.atomic import fetch_add
from deg._kernels.distances import COS, distance
from deg._kernels.heap import (
    before,
    cand_id,
    cand_key,
    cand_pop,
    cand_push,
    drain_padded,
    max_push,
    max_replace_top,
)
from deg._kernels.prefetch import prefetch_head, prefetch_span
from deg._kernels.search import next_tag, stop_key
from deg._kernels.values import f32
from deg._kernels.view import row_signature

LANES = 8  # edges scored side by side: slots are padded to a multiple (one 512-bit register)
PLANES = 4  # bits per query coordinate
LEVELS = (1 << PLANES) - 1
SPAN = 3.5  # the query's 4-bit range: +-SPAN standard deviations of its rotated coordinates
A, B, P, E = 0, 1, 2, 3  # the factor rows of an edge: offset, scale, positive signs, error
FACTORS = 4
# an estimate's error bound in standard errors (RaBitQ's epsilon_0: 1.9 holds ~99.9%)
CONFIDENCE = 1.0
NO_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)  # above every candidate key (heap.cand_key)


@jit
def hadamard_level(src, dst, half):
    """One level of the Hadamard transform in a form that vectorises: pairs ``(j, j + half)``
    of ``src`` to ``(2j, 2j + 1)`` of ``dst``; log2(n) levels give the transform in natural
    order (the in-place butterfly of strides 1..8 did not vectorise: 4.3 us against 0.7 us
    for 1024 coordinates)."""
    for j in range(half):
        x = src[j]
        y = src[j + half]
        dst[2 * j] = x + y
        dst[2 * j + 1] = x - y


@jit
def hadamard_level4(src, dst, quarter):
    """Two levels of ``hadamard_level`` in one pass (the same sums in the same order, so the
    same bits): quadruples ``(j, j + q, j + 2q, j + 3q)`` of ``src`` to ``4j .. 4j + 3`` of
    ``dst``; half the passes over the coordinates (512 of them: 0.22 us against 0.44)."""
    for j in range(quarter):
        a = src[j]
        b = src[j + quarter]
        c = src[j + 2 * quarter]
        d = src[j + 3 * quarter]
        p = a + c
        r = a - c
        t = b + d
        u = b - d
        dst[4 * j] = p + t
        dst[4 * j + 1] = p - t
        dst[4 * j + 2] = r + u
        dst[4 * j + 3] = r - u


@jit
def hadamard(a, tmp):
    """The (unnormalised) Hadamard transform of ``a`` (length a power of two) in place,
    ``tmp`` (as long) scratch."""
    n = a.shape[0]
    levels = 0
    while (1 << levels) < n:
        levels += 1
    flips = 0
    if levels % 2 == 1:
        hadamard_level(a, tmp, n // 2)
        flips = 1
    for _ in range(levels // 2):
        if flips % 2 == 0:
            hadamard_level4(a, tmp, n // 4)
        else:
            hadamard_level4(tmp, a, n // 4)
        flips += 1
    if flips % 2 == 1:
        a[:] = tmp


@jit
def spin(x, mean, signs, out, tmp):
    """``out = R(x - mean)``, zero-padded to ``len(out)`` coordinates: per row of ``signs``,
    flip signs, then an orthonormal Hadamard transform of the first h and of the last h
    coordinates (h the largest power of two in ``len(out)``; one transform when they are
    the same). ``x`` of any stored type; ``tmp`` float32 of length h."""
    dp = out.shape[0]
    h = tmp.shape[0]
    for i in range(dp):
        out[i] = 0.0
    for i in range(x.shape[0]):
        out[i] = f32(x[i]) - mean[i]
    norm = np.float32(1.0 / np.sqrt(h))
    for r in range(signs.shape[0]):
        for i in range(dp):
            out[i] *= signs[r, i]
        head = out[0:h]
        hadamard(head, tmp)
        for i in range(h):
            head[i] *= norm
        if h < dp:
            tail = out[dp - h : dp]
            hadamard(tail, tmp)
            for i in range(h):
                tail[i] *= norm


@jit
def spin_rows(dp):
    """Two rows of ``dp`` coordinates for ``spin``'s results and its scratch (the largest
    power of two in ``dp``)."""
    h = 1
    while 2 * h <= dp:
        h *= 2
    return np.empty(dp, np.float32), np.empty(dp, np.float32), np.empty(h, np.float32)


@jit
def encode_row(graph, u, mean, signs, code, fac, yu, yv, tmp):
    """Row u's edge codes into ``code`` (uint64, words x lanes) and factors into ``fac``
    (float32, 3 x lanes); slots past d and empty slots (u itself) all zero."""
    code[:] = 0
    fac[:] = 0.0
    spin(graph[0][u], mean, signs, yu, tmp)
    for j in range(graph[1].shape[1]):
        encode_slot(graph, u, j, mean, signs, code, fac, yu, yv, tmp)


@jit
def encode_slot(graph, u, j, mean, signs, code, fac, yu, yv, tmp):
    """Slot j of row u (``yu``: u's vector spun) into ``code`` and ``fac``; zeros for an
    empty slot."""
    vectors, neighbors, _, _ = graph
    dp = yu.shape[0]
    words = dp // 64
    lanes = fac.shape[0] // FACTORS
    v = neighbors[u, j]
    if v == u:
        for wd in range(words):
            code[wd * lanes + j] = 0
        for f in range(FACTORS):
            fac[f * lanes + j] = 0.0
        return
    spin(vectors[v], mean, signs, yv, tmp)
    w = 0.0
    absum = 0.0
    centre = 0.0
    count = 0
    for wd in range(words):
        bits = np.uint64(0)
        for b in range(64):
            i = wd * 64 + b
            r = np.float64(yv[i]) - np.float64(yu[i])
            w += r * r
            absum += abs(r)
            if r > 0:
                bits |= np.uint64(1) << np.uint64(b)
                centre += yu[i]
                count += 1
            else:
                centre -= yu[i]
        code[wd * lanes + j] = bits
    scale = w / absum if absum > 0 else 0.0
    fac[A * lanes + j] = w + 2.0 * scale * centre
    fac[B * lanes + j] = scale
    fac[P * lanes + j] = count
    # the standard error of <t, r> per unit |t|: |r| sqrt(1/<x,o>^2 - 1) / sqrt(dp - 1),
    # with <x, o> = sum |r_i| / (sqrt(dp) |r|) (RaBitQ's bound for a unit code vector x)
    cos = absum / np.sqrt(dp * w) if w > 0 else 1.0
    spread = np.sqrt(max(0.0, 1.0 / (cos * cos) - 1.0) / (dp - 1)) if cos > 0 else 0.0
    fac[E * lanes + j] = 2.0 * CONFIDENCE * np.sqrt(w) * spread


@jit
def slot_key(neighbors, gen, u, j):
    """What slot j of row u encodes, wherever in the row: its neighbour's id and generation
    and u's generation (odd: 0 marks a slot never encoded)."""
    v = neighbors[u, j]
    h = np.uint32((np.uint32(v) ^ np.uint32(gen[v] * np.uint32(0x9E3779B1))) * np.uint32(16777619))
    return np.uint32(h ^ np.uint32(gen[u] * np.uint32(0x85EBCA6B))) | np.uint32(1)


@jit
def update_row(graph, u, gen, mean, signs, old, new, yu, yv, tmp):
    """Row u's codes into ``new`` = (code, factors, keys) from ``old`` (its codes when last
    encoded, the same three): a slot whose neighbour was encoded in some slot of ``old``
    (by its key, ``slot_key``) takes that slot's code, only the others are encoded (a
    slot's code depends on its two vertices alone, and an edit or the search view's
    reordering moves slots around). Returns how many slots were encoded."""
    neighbors = graph[1]
    old_code, old_fac, old_keys = old
    code, fac, keys = new
    d = neighbors.shape[1]
    words = yu.shape[0] // 64
    lanes = fac.shape[0] // FACTORS
    spun = False
    count = 0
    for j in range(d):
        key = slot_key(neighbors, gen, u, j)
        i = 0
        while i < d and old_keys[i] != key:
            i += 1
        if i < d:
            for wd in range(words):
                code[wd * lanes + j] = old_code[wd * lanes + i]
            for f in range(FACTORS):
                fac[f * lanes + j] = old_fac[f * lanes + i]
        else:
            if not spun:
                spin(graph[0][u], mean, signs, yu, tmp)
                spun = True
            encode_slot(graph, u, j, mean, signs, code, fac, yu, yv, tmp)
            count += 1
        keys[j] = key
    for j in range(d, lanes):  # the lanes past d stay zero, as encode_row leaves them
        for wd in range(words):
            code[wd * lanes + j] = 0
        for f in range(FACTORS):
            fac[f * lanes + j] = 0.0
    return count


@jit
def encode_rows(graph, lo, hi, gen, esig, eslot, mean, signs, codes, factors):
    """Encode every row of ``lo..hi-1`` whose signature is not ``esig``'s (the slots that
    changed, ``update_row``); returns how many rows. Serial: callers split the rows over
    threads."""
    yu, yv, tmp = spin_rows(signs.shape[1])
    neighbors = graph[1]
    old = (np.empty(codes.shape[1], np.uint64), np.empty(factors.shape[1], np.float32))
    old_keys = np.empty(eslot.shape[1], np.uint32)
    count = 0
    for u in range(lo, hi):
        s = row_signature(neighbors, gen, u)
        if s != esig[u]:
            old[0][:] = codes[u]
            old[1][:] = factors[u]
            old_keys[:] = eslot[u]
            update_row(
                graph,
                u,
                gen,
                mean,
                signs,
                (old[0], old[1], old_keys),
                (codes[u], factors[u], eslot[u]),
                yu,
                yv,
                tmp,
            )
            esig[u] = s
            count += 1
    return count


@jit
def encode_listed(graph, rows, gen, mean, signs, index_codes, codes, factors, sigs, keys):
    """Encode the rows listed in ``rows`` (ids below n) into ``codes[i]``, ``factors[i]``,
    ``keys[i]`` (from the index's, ``index_codes``: (edge codes, factors, eslot), only the
    changed slots encoded again) and their signatures into ``sigs[i]``, leaving the
    index's own as they are."""
    yu, yv, tmp = spin_rows(signs.shape[1])
    edge_codes, edge_factors, eslot = index_codes
    neighbors = graph[1]
    for i in range(rows.shape[0]):
        u = rows[i]
        old = (edge_codes[u], edge_factors[u], eslot[u])
        update_row(graph, u, gen, mean, signs, old, (codes[i], factors[i], keys[i]), yu, yv, tmp)
        sigs[i] = row_signature(neighbors, gen, u)


@jit
def take_listed(rows, codes, factors, sigs, keys, edge_codes, edge_factors, esig, eslot):
    """Rows ``encode_listed`` encoded, into the index's codes."""
    for i in range(rows.shape[0]):
        u = rows[i]
        for w in range(codes.shape[1]):
            edge_codes[u, w] = codes[i, w]
        for f in range(factors.shape[1]):
            edge_factors[u, f] = factors[i, f]
        for j in range(keys.shape[1]):
            eslot[u, j] = keys[i, j]
        esig[u] = sigs[i]


@jit
def miscoded(graph, n, gen, esig, mean, signs, codes, factors):
    """The first row of ``0..n-1`` whose signature claims it encoded but whose codes or
    factors differ from a fresh encoding, or -1 (a check that trusts no signature)."""
    yu, yv, tmp = spin_rows(signs.shape[1])
    code = np.empty(codes.shape[1], np.uint64)
    fac = np.empty(factors.shape[1], np.float32)
    neighbors = graph[1]
    for u in range(n):
        if row_signature(neighbors, gen, u) != esig[u]:
            continue
        encode_row(graph, u, mean, signs, code, fac, yu, yv, tmp)
        for i in range(codes.shape[1]):
            if code[i] != codes[u, i]:
                return u
        for i in range(factors.shape[1]):
            if fac[i] != factors[u, i]:
                return u
    return -1


@jit
def planes_of(yq, planes):
    """Round the rotated query to 4 bits over +-SPAN of its spread and split the values into
    bit planes (``planes[p, w]``: bit b is bit p of coordinate 64w + b); returns the offset,
    the step and the sum of the rounded coordinates."""
    dp = yq.shape[0]
    sq = np.float32(0.0)
    for i in range(dp):
        sq += yq[i] * yq[i]
    sigma = np.sqrt(sq / dp)
    lo = np.float32(-SPAN * sigma)
    step = np.float32(2.0 * SPAN * sigma / LEVELS)
    if not step > 0:  # a query at the mean: any step does
        step = np.float32(1.0)
    inv = np.float32(1.0) / step
    total = 0
    for w in range(dp // 64):
        p0 = np.uint64(0)
        p1 = np.uint64(0)
        p2 = np.uint64(0)
        p3 = np.uint64(0)
        for b in range(64):
            v = (yq[w * 64 + b] - lo) * inv + np.float32(0.5)
            v = min(np.float32(LEVELS), max(np.float32(0.0), v))
            q = np.uint64(v)
            total += np.int64(q)
            bit = np.uint64(b)
            p0 |= (q & np.uint64(1)) << bit
            p1 |= ((q >> np.uint64(1)) & np.uint64(1)) << bit
            p2 |= ((q >> np.uint64(2)) & np.uint64(1)) << bit
            p3 |= ((q >> np.uint64(3)) & np.uint64(1)) << bit
        planes[0, w] = p0
        planes[1, w] = p1
        planes[2, w] = p2
        planes[3, w] = p3
    return lo, step, lo * dp + step * np.float32(total)


@jit("uint64(uint64)")
def popcount(x):
    """Set bits of a 64-bit word (LLVM turns the pattern into ``popcnt``/``vpopcntq``)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@jit
def score(code, planes, acc, m):
    """``acc[j]``: the sum of the 4-bit query values over the positive signs of slot j's code,
    for the first m slots (word-major codes: word w of every slot side by side, so one
    popcount serves 8 slots; m a multiple of ``LANES``, or the loop is not vectorised)."""
    lanes = acc.shape[0]
    for j in range(m):
        acc[j] = 0
    for w in range(planes.shape[1]):
        p0 = planes[0, w]
        p1 = planes[1, w]
        p2 = planes[2, w]
        p3 = planes[3, w]
        row = code[w * lanes : w * lanes + m]
        for j in range(m):
            c = row[j]
            acc[j] += (popcount(c & p0) + 2 * popcount(c & p1)) + (
                4 * popcount(c & p2) + 8 * popcount(c & p3)
            )


@jit
def bounds(fac, acc, m, lanes, base, half, two_lo, two_step, total, low):
    """``low[j]`` for the first m slots: the estimated distance of slot j's neighbour less its
    error bound (a neighbour (nearly) surely no closer), from ``base`` (the expanded vertex's
    exact distance, in squared L2) and the scores ``acc``; lane by lane, so it vectorises."""
    reach = np.sqrt(base)  # |t|: the error bound scales with it
    for j in range(m):
        signed = two_lo * fac[P * lanes + j] + two_step * np.float32(acc[j]) - total
        est = half * (base + fac[A * lanes + j] - np.float32(2.0) * fac[B * lanes + j] * signed)
        low[j] = est - half * reach * fac[E * lanes + j]


@jit
def walk_one(
    graph, coded, query, yq, entries, spec, visited, tag, cand, res_d, res_i, planes, sums
):
    """The range search of ``search.search_one`` on estimates: a vertex is expanded in order
    of its estimate, its exact distance is computed then (it enters the results by it, and
    its neighbours are estimated from it), and a neighbour becomes a candidate when its
    estimate is within radius * (1 + eps). The radius is the k-th exact distance once k
    results are in. ``coded``: (codes, factors, gen, esig). ``spec``: (k, eps, max_dc,
    max_degree, check); ``max_dc`` > 0 bounds the exact distances and estimates together;
    with ``check`` a row whose signature is not the one it was encoded with (a write since,
    see ``encode_rows``) has its neighbours' exact distances computed instead. Returns
    ``(n_res, n_dc)``."""
    vectors, neighbors, _, metric = graph
    codes, factors, gen, esig = coded
    k, eps, max_dc, max_degree, check = spec
    half = np.float32(0.5) if metric == COS else np.float32(1.0)  # COS: half the squared L2
    acc, low, fresh = sums
    lanes = factors.shape[1] // FACTORS
    scored = -(-max_degree // LANES) * LANES  # the slots scored: whole groups of LANES
    rows = (vectors, codes, factors, neighbors)  # what an expansion reads
    lo, step, total = planes_of(yq, planes)
    two_lo = np.float32(2.0) * lo
    two_step = np.float32(2.0) * step
    tag16 = np.uint16(tag)
    n_cand = 0
    n_res = 0
    n_dc = 0
    for p in range(entries.shape[0]):
        e = entries[p]
        if visited[e] == tag16:
            continue
        visited[e] = tag16
        n_cand = cand_push(cand, n_cand, cand_key(distance(metric, query, vectors[e]), e))
    radius = np.float32(np.inf)
    xr = np.float32(np.inf)
    xr_key = stop_key(np.inf)
    while n_cand > 0 and cand[0] <= xr_key and not (max_dc > 0 and n_dc >= max_dc):
        u = cand_id(cand[0])
        n_cand = cand_pop(cand, n_cand)
        # the likely next expansion: start loading it now, a whole expansion ahead; when one
        # of u's neighbours turns out better it is loaded after u's estimates (that reads
        # less of the expansion's time ahead, but far more often the right vertex)
        if n_cand > 0:
            prefetch_vertex(rows, cand_id(cand[0]), max_degree, scored)
        du = distance(metric, query, vectors[u])  # (an entry's again, uncounted: in cache)
        n_dc += 1
        if n_res < k:
            n_res = max_push(res_d, res_i, n_res, du, u)
            if n_res == k:
                radius = res_d[0]
        elif before(du, u, res_d[0], res_i[0]):
            max_replace_top(res_d, res_i, n_res, du, u)
            radius = res_d[0]
        xr = radius * np.float32(1.0 + eps)
        xr_key = stop_key(xr)
        if check and row_signature(neighbors, gen, u) != esig[u]:
            n_cand, n_dc = expand_exactly(
                vectors,
                neighbors,
                metric,
                query,
                u,
                max_degree,
                visited,
                tag16,
                xr,
                cand,
                n_cand,
                n_dc,
            )
            continue
        top = cand[0] if n_cand > 0 else NO_KEY
        # the unvisited neighbours first, without a branch (a coin toss to the predictor),
        # so their visited marks load side by side and while the codes are scored
        n_fresh = 0
        for j in range(max_degree):
            v = neighbors[u, j]
            fresh[n_fresh] = j
            n_fresh += visited[v] != tag16
            visited[v] = tag16
        n_dc += n_fresh
        score(codes[u], planes, acc, scored)
        bounds(factors[u], acc, scored, lanes, du / half, half, two_lo, two_step, total, low)
        for f in range(n_fresh):
            j = fresh[f]
            if low[j] <= xr:
                key = cand_key(max(low[j], np.float32(0.0)), neighbors[u, j])
                n_cand = cand_push(cand, n_cand, key)
        if n_cand > 0 and cand[0] < top:  # a neighbour of u goes next: load it instead
            prefetch_vertex(rows, cand_id(cand[0]), max_degree, scored)
    return n_res, n_dc


@jit
def expand_exactly(
    vectors, neighbors, metric, query, u, max_degree, visited, tag16, xr, cand, n_cand, n_dc
):
    """Expand u by its neighbours' exact distances (a candidate's key is then its distance);
    returns the candidate count and the distance computations."""
    for j in range(max_degree):
        v = neighbors[u, j]
        if visited[v] == tag16:
            continue
        visited[v] = tag16
        dv = distance(metric, query, vectors[v])
        n_dc += 1
        if dv <= xr:
            n_cand = cand_push(cand, n_cand, cand_key(dv, v))
    return n_cand, n_dc


@jit
def prefetch_vertex(rows, v, max_degree, scored):
    """Start loading what expanding ``v`` reads (``rows``: vectors, edge codes, factors,
    neighbours): its vector, the codes and factors of its first ``scored`` slots and its
    first ``max_degree`` neighbour slots."""
    vectors, codes, factors, neighbors = rows
    lanes = factors.shape[1] // FACTORS
    prefetch_head(vectors, v, 1 << 30)
    for w in range(codes.shape[1] // lanes):
        prefetch_span(codes, v, w * lanes * 8, scored * 8)
    for f in range(FACTORS):
        prefetch_span(factors, v, f * lanes * 4, scored * 4)
    prefetch_head(neighbors, v, 4 * max_degree)


@jit
def walk_shared(
    t, claim, done, chunk, graph, coded, mean, signs, queries, entries, spec, scratch, out
):
    """Thread ``t``'s part of a batch (as ``search.search_shared``): claim ``chunk`` queries
    at a time, spin each (``spin``) and walk it from its row of ``entries`` (one row for all,
    or one per query); sorted, padded results into ``out`` (``Results``)."""
    out_i, out_d, out_dc = out
    dp = signs.shape[1]
    yq, _, tmp = spin_rows(dp)
    planes = np.empty((PLANES, dp // 64), np.uint64)
    acc = np.empty(coded[1].shape[1] // FACTORS, np.int64)
    sums = (acc, np.empty(acc.shape[0], np.float32), np.empty(acc.shape[0], np.int64))
    visited, tags, cand, res_d, res_i = scratch
    visited_t, tag_t, cand_t, rd, ri = visited[t], tags[t], cand[t], res_d[t], res_i[t]
    nq = queries.shape[0]
    lo = fetch_add(claim, chunk)
    while lo < nq:
        hi = min(lo + chunk, nq)
        for q in range(lo, hi):
            tag = next_tag(visited_t, tag_t)
            spin(queries[q], mean, signs, yq, tmp)
            erow = entries[0] if entries.shape[0] == 1 else entries[q]
            n_res, n_dc = walk_one(
                graph,
                coded,
                queries[q],
                yq,
                erow,
                spec,
                visited_t,
                tag,
                cand_t,
                rd,
                ri,
                planes,
                sums,
            )
            drain_padded(rd, ri, n_res, out_d[q], out_i[q])
            out_dc[q] = n_dc
        fetch_add(done, hi - lo)
        lo = fetch_add(claim, chunk)
