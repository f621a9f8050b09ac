"""Compiled twin of :func:`stntool.maps._smooth` (the spec), for the elastic fields of warp records.

The same separable Gaussian with replicated edges, evaluated in the same order of operations (each
value is ``((0 + x0 w0) + x1 w1) + ...`` over the taps in order, first along axis -2 of the field,
then along axis -1, as the spec's loop over ``axis in (-2, -1)``), so the results are the spec's bits;
the tests compare the two. :func:`noise_field` draws an elastic record's noise (NumPy's PCG64 stream,
stepped in interleaved lanes) and smooths it, one channel per thread
(:func:`stntool.sampling._cpu._run_blocks`), with the bits of the NumPy recipe.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import jit_inline, jit_serial
from .sampling._cpu import _claim, _finish, _join, _run_blocks


def _taps_dot_intrinsic(block):
    @intrinsic
    def taps_dot(typingctx, src, starts, taps, j, dst, d):
        """``dst[d + m] = ((0 + src[starts[0] + j + m] taps[0]) + src[starts[1] + j + m] taps[1]) + ...`` for
        ``m < block``, over all taps in order: the sums in the lanes of one vector, whose operations the
        compiler splits into independent register-sized ones (float64 arrays ``src``, ``taps``, ``dst``;
        int64 ``starts``); each lane's order of operations is the scalar sum's."""
        if not (isinstance(src, types.Array) and isinstance(dst, types.Array) and isinstance(taps, types.Array)
                and isinstance(starts, types.Array) and src.dtype == dst.dtype == taps.dtype == types.float64
                and starts.dtype == types.int64):
            return None
        sig = types.void(src, starts, taps, types.intp, dst, types.intp)

        def codegen(context, builder, sig, args):
            f64 = ir.DoubleType()
            vec = ir.VectorType(f64, block)
            lane0 = ir.Constant(ir.IntType(32), 0)
            spread = ir.Constant(ir.VectorType(ir.IntType(32), block), [0] * block)
            src_a, starts_a, taps_a = [context.make_array(t)(context, builder, v)
                                       for t, v in zip(sig.args[:3], args[:3])]
            dst_a = context.make_array(sig.args[4])(context, builder, args[4])
            n = builder.extract_value(taps_a.shape, 0)
            acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [ir.Constant(f64, 0.0)] * block))
            with cgutils.for_range(builder, n) as loop:
                k = loop.index
                at = builder.add(builder.load(builder.gep(starts_a.data, [k])), args[3])
                v = builder.load(builder.bitcast(builder.gep(src_a.data, [at]), vec.as_pointer()), align=8)
                wk = builder.load(builder.gep(taps_a.data, [k]))
                w = builder.shuffle_vector(builder.insert_element(ir.Constant(vec, ir.Undefined), wk, lane0),
                                           ir.Constant(vec, ir.Undefined), spread)
                builder.store(builder.fadd(builder.load(acc), builder.fmul(v, w)), acc)
            out = builder.bitcast(builder.gep(dst_a.data, [args[5]]), vec.as_pointer())
            builder.store(builder.load(acc), out, align=8)
            return context.get_dummy_value()
        return sig, codegen
    return taps_dot


#: Sums per block of the smoothing loops: the block's sums are independent vector operations, so the
#: additions of one tap do not wait for each other (rows narrower than a block are summed one by one).
BLOCK = 32
_taps_block = _taps_dot_intrinsic(BLOCK)


@jit_inline
def _taps_row(src, starts, taps, n, dst, d0):
    """``dst[d0 + j]`` for ``j < n``, each the sum of :func:`_taps_dot_intrinsic`, in blocks; the last block
    ends at ``n`` (it may compute some sums of the one before again, with the same bits). ``dst`` must
    not overlap what ``src`` is read at."""
    if n < BLOCK:
        for j in range(n):
            a = 0.0
            for k in range(taps.size):
                a += src[starts[k] + j] * taps[k]
            dst[d0 + j] = a
        return
    for j in range(0, n - BLOCK + 1, BLOCK):
        _taps_block(src, starts, taps, j, dst, d0 + j)
    if n % BLOCK:
        _taps_block(src, starts, taps, n - BLOCK, dst, d0 + n - BLOCK)


@jit_inline
def _smooth_channel(field, taps, scale, base, node, out, c, tmp, padded, starts, acc):
    """``out[:, :, c]`` = ``field`` (flat, its first ``H * W`` elements the rows of ``(H, W)``) smoothed along
    axis 0, then along axis 1, times ``scale``, plus the pixel map ``base`` (2x3 affine, 3x3 projective;
    none when ``(0, 3)``) at the nodes' output pixels ``((j - 1) node, (i - 1) node)``; ``tmp`` ``(H * W)``,
    ``padded`` ``(W + taps.size - 1)``, ``starts`` (``taps.size``, int64) and ``acc`` ``(W)`` are scratch."""
    h, w = out.shape[0], out.shape[1]
    n_taps = taps.size
    r = n_taps // 2
    for i in range(h):  # along axis -2: tap k reads row i + k - r (edges replicated)
        for k in range(n_taps):
            starts[k] = min(max(i + k - r, 0), h - 1) * w
        _taps_row(field, starts, taps, w, tmp, i * w)
    for k in range(n_taps):  # along axis -1: tap k reads padded[j + k]
        starts[k] = k
    for i in range(h):
        row = i * w
        for j in range(r):  # edges replicated
            padded[j] = tmp[row]
            padded[r + w + j] = tmp[row + w - 1]
        for j in range(w):
            padded[r + j] = tmp[row + j]
        _taps_row(padded, starts, taps, w, acc, 0)
        if base.shape[0] == 0:
            for j in range(w):
                out[i, j, c] = acc[j] * scale
            continue
        # base at the row's nodes, as stntool.maps._theta_points: (x m[c, 0] + y m[c, 1]) + m[c, 2], over
        # the third row's for a projective map
        y = (i - 1) * node
        m0, ym1, m2 = base[c, 0], y * base[c, 1], base[c, 2]
        if base.shape[0] == 2:
            for j in range(w):
                out[i, j, c] = acc[j] * scale + ((j - 1) * node * m0 + ym1 + m2)
        else:
            p0, yp1, p2 = base[2, 0], y * base[2, 1], base[2, 2]
            for j in range(w):
                x = (j - 1) * node
                out[i, j, c] = acc[j] * scale + (x * m0 + ym1 + m2) / (x * p0 + yp1 + p2)


# --------------------------------------------------------------------------- PCG64, stepped in lanes
# NumPy's PCG64 (the bit generator of ``default_rng``): a 128-bit LCG ``s <- s M + inc`` whose 64-bit
# output is the XSL-RR of the new state, and ``random()`` = ``(out >> 11) 2**-53``. One stream is a
# chain of dependent 128-bit multiplies; :data:`LANES` interleaved lanes, lane ``k`` holding the states
# of draws ``k, k + LANES, ...`` and stepping by ``M**LANES`` (:func:`_lane_start`), give the same
# doubles in the same order without waiting on each multiply.

PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
LANES = 4
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1


def _split(v: int) -> tuple:
    return (v >> 64) & _MASK64, v & _MASK64


def _lane_start(bitgen: np.random.PCG64) -> np.ndarray:
    """``[[state hi, state lo] per lane..., [M**LANES hi, lo], [step hi, lo]]`` (uint64): lane ``k`` holds
    the state of ``bitgen``'s draw ``k`` (the state after ``k + 1`` steps); a lane steps ``s <- s A + C``
    with ``A = M**LANES``, ``C = inc (M**(LANES-1) + ... + 1)``, all mod 2**128."""
    st = bitgen.state["state"]
    s, inc = st["state"], st["inc"]
    rows = []
    for _ in range(LANES):
        s = (s * PCG_MULT + inc) & _MASK128
        rows.append(_split(s))
    a, c = 1, 0
    for _ in range(LANES):
        a, c = (a * PCG_MULT) & _MASK128, (c * PCG_MULT + inc) & _MASK128
    rows += [_split(a), _split(c)]
    return np.array(rows, dtype=np.uint64)


@intrinsic
def _pcg_lane(typingctx, hi, lo, a_hi, a_lo, c_hi, c_lo):
    """``(double, hi, lo)``: NumPy's ``random()`` of the PCG64 state ``(hi, lo)`` (XSL-RR output, 53 bits
    times 2**-53) and the lane's next state ``s A + C`` mod 2**128 (uint64 halves)."""
    if not all(isinstance(t, types.Integer) for t in (hi, lo, a_hi, a_lo, c_hi, c_lo)):
        return None
    sig = types.Tuple((types.float64, types.uint64, types.uint64))(types.uint64, types.uint64, types.uint64,
                                                                   types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, sig, args):
        i64, i128 = ir.IntType(64), ir.IntType(128)

        def wide(h, l):
            return builder.or_(builder.shl(builder.zext(h, i128), ir.Constant(i128, 64)), builder.zext(l, i128))

        s = wide(args[0], args[1])
        s_hi, s_lo = args[0], args[1]
        rot = builder.lshr(s_hi, ir.Constant(i64, 58))
        x = builder.xor(s_hi, s_lo)
        out = builder.or_(builder.lshr(x, rot), builder.shl(x, builder.and_(builder.neg(rot), ir.Constant(i64, 63))))
        u = builder.fmul(builder.uitofp(builder.lshr(out, ir.Constant(i64, 11)), ir.DoubleType()),
                         ir.Constant(ir.DoubleType(), 1.0 / 9007199254740992.0))
        nxt = builder.add(builder.mul(s, wide(args[2], args[3])), wide(args[4], args[5]))
        n_hi = builder.trunc(builder.lshr(nxt, ir.Constant(i128, 64)), i64)
        n_lo = builder.trunc(nxt, i64)
        return context.make_tuple(builder, sig.return_type, [u, n_hi, n_lo])
    return sig, codegen


@jit_inline
def _draw(lanes, step, flat):
    """``flat`` (whose size is a multiple of :data:`LANES`) = ``(random() * 2 - 1) / step`` of the draws
    whose lane states ``lanes`` (:func:`_lane_start`) holds, in order."""
    a_hi, a_lo, c_hi, c_lo = lanes[LANES, 0], lanes[LANES, 1], lanes[LANES + 1, 0], lanes[LANES + 1, 1]
    h0, l0, h1, l1 = lanes[0, 0], lanes[0, 1], lanes[1, 0], lanes[1, 1]
    h2, l2, h3, l3 = lanes[2, 0], lanes[2, 1], lanes[3, 0], lanes[3, 1]
    for e in range(0, flat.size, LANES):
        u0, h0, l0 = _pcg_lane(h0, l0, a_hi, a_lo, c_hi, c_lo)
        u1, h1, l1 = _pcg_lane(h1, l1, a_hi, a_lo, c_hi, c_lo)
        u2, h2, l2 = _pcg_lane(h2, l2, a_hi, a_lo, c_hi, c_lo)
        u3, h3, l3 = _pcg_lane(h3, l3, a_hi, a_lo, c_hi, c_lo)
        flat[e] = (u0 * 2.0 - 1.0) / step
        flat[e + 1] = (u1 * 2.0 - 1.0) / step
        flat[e + 2] = (u2 * 2.0 - 1.0) / step
        flat[e + 3] = (u3 * 2.0 - 1.0) / step


@jit_serial
def _draw_and_smooth(lanes, step, taps, scale, base, out, work, role):
    """Channel ``c`` (0 or 1) of ``out (H, W, 2)``: uniform noise drawn by the PCG64 lanes ``lanes[c]``
    (:func:`_lane_start`; row by row, as ``(u * 2 - 1) / step``), smoothed and scaled, plus the map
    ``base`` at the nodes (output pixels ``((j - 1) step, (i - 1) step)``), as :func:`_smooth_channel`.
    The channels are the items of the schedule ``work``, so two threads draw and smooth one each
    (channel 1's generator is channel 0's advanced by ``H * W`` draws: the channels are the bits of one
    ``random((2, H, W))`` call)."""
    h, w, _ = out.shape
    noise = np.empty(-(-h * w // LANES) * LANES)  # the rows of (H, W), in whole rounds of draws
    tmp = np.empty(h * w)
    padded = np.empty(w + taps.size - 1)
    starts = np.empty(taps.size, np.int64)
    acc = np.empty(w)
    joined = _join(work, role)
    while joined:
        c0, c1 = _claim(work)
        if c0 >= c1:
            break
        for c in range(c0, c1):
            _draw(lanes[c], step, noise)
            _smooth_channel(noise, taps, scale, base, step, out, c, tmp, padded, starts, acc)
    return _finish(work, role, joined)


def noise_field(seed: int, hw, step: int, taps: np.ndarray, scale: float, base=None) -> np.ndarray:
    """``np.moveaxis(maps._smooth(noise, taps) * scale, 0, -1)`` of ``noise = (Generator(PCG64(seed)).random((2, H, W))
    * 2 - 1) / step``, compiled: ``(H, W, 2)``, C-contiguous, the same bits, the two channels drawn and smoothed
    on two threads when there are. With ``base``, a float64 pixel map (2x3 affine or 3x3 projective), each
    node ``(i, j)`` gets ``base`` at output pixel ``((j - 1) step, (i - 1) step)`` added, with the bits of
    :func:`stntool.maps._theta_points` (an elastic record's lattice)."""
    h, w = hw
    first = np.random.PCG64(seed)
    lanes = np.empty((2, LANES + 2, 2), np.uint64)
    lanes[0] = _lane_start(first)
    first.advance(h * w)  # one 64-bit draw per double
    lanes[1] = _lane_start(first)
    out = np.empty((h, w, 2))
    base = np.zeros((0, 3)) if base is None else np.ascontiguousarray(base, dtype=np.float64)
    _run_blocks(_draw_and_smooth, 2, out.size, (lanes, float(step), np.ascontiguousarray(taps, dtype=np.float64),
                                                  float(scale), base, out), ())
    return out
