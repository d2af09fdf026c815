// Pooling kernels, OpenMP. Twin of naive/pool.cpp with the same contracts (kernels/pool.h). Threads take
// whole (n, c) planes, so no two threads write the same element and every result is the same for any
// thread count. Differences from naive: max pooling and every backward kernel give exactly naive's
// results (the same comparisons, the same float expressions in the same order); the average forwards add
// in float rather than double, so they differ from naive by rounding only. The 2x2 stride-2 unpadded max
// pool, the reference CNN's, has a branch-free path that vectorises along the output row. The fused relu
// + max pool is the same code (one template with a bool parameter) with relu applied to each element as
// it is loaded, and a backward that skips outputs that are not > 0.
// channels_last (NHWC) has kernels of its own: there the c channels of one position are contiguous, so
// every loop runs across channels (one vector lane per channel) while the window is walked in naive's
// order for each, which keeps the results above (the same comparisons, and per element the same float
// additions in the same order). Forwards take whole output rows of one image per thread; backwards take
// (image, block of channels), since windows of neighbouring rows overlap and would otherwise race.
#include "../pool.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

namespace dyad::omp {

namespace {

// Below this many elements touched the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;

struct Range {
    int64_t lo, hi;
};

Range window(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = i * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

Range adaptive_window(int64_t i, int64_t out, int64_t size) {
    return {i * size / out, ((i + 1) * size + out - 1) / out};
}

// Calls body(plane) for every (n, c) plane, in parallel when the whole job touches enough elements.
template <typename Body>
void for_planes(const Pool2dShape& s, Body body) {
    const int64_t planes = s.n * s.c;
    const int64_t work = planes * (s.h * s.w + s.p * s.q);
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t plane = 0; plane < planes; plane++) body(plane);
}

// naive's rule, branch-free: take v when it is larger than the best so far, or when it is the first NaN
// (once the best is NaN nothing is taken). !(v <= best) is true for v > best and for a NaN v; written this
// way (two compares and an and, all on floats) GCC vectorises the loops that use it.
inline bool take(float v, float best) { return !(v <= best) && best == best; }

// The element a max pool reads: x itself, or relu(x) for the fused relu + max pool (naive's relu_fwd
// expression, x < 0 ? 0 : x, so NaN and -0.0 pass unchanged; a compare and a blend, which vectorises).
template <bool Relu>
inline float load(float v) {
    return Relu && v < 0.0f ? 0.0f : v;
}

// One plane of the 2x2 stride-2 unpadded max pool: window (i, j) reads x[2i, 2j], x[2i, 2j + 1],
// x[2i + 1, 2j], x[2i + 1, 2j + 1] in that (row-major) order.
template <bool Relu, bool Idx>
void max_pool_2x2(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    for (int64_t i = 0; i < s.p; i++) {
        const float* r0 = x + 2 * i * s.w;
        const float* r1 = r0 + s.w;
        float* yr = y + i * s.q;
        int32_t* ir = Idx ? idx + i * s.q : nullptr;
        const int32_t row = int32_t(2 * i * s.w), w = int32_t(s.w);
#pragma omp simd
        for (int64_t j = 0; j < s.q; j++) {
            const int32_t base = row + 2 * int32_t(j);
            float best = load<Relu>(r0[2 * j]);
            int32_t arg = base;
            const float b = load<Relu>(r0[2 * j + 1]), c = load<Relu>(r1[2 * j]), d = load<Relu>(r1[2 * j + 1]);
            bool t = take(b, best);
            best = t ? b : best;
            arg = t ? base + 1 : arg;
            t = take(c, best);
            best = t ? c : best;
            arg = t ? base + w : arg;
            t = take(d, best);
            best = t ? d : best;
            arg = t ? base + w + 1 : arg;
            yr[j] = best;
            if constexpr (Idx) ir[j] = arg;
        }
    }
}

// One plane of any other max pool: the window walked in row-major order, as in naive.
template <bool Relu, bool Idx>
void max_pool_general(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    for (int64_t i = 0; i < s.p; i++) {
        const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
        for (int64_t j = 0; j < s.q; j++) {
            const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
            int64_t arg = rows.lo * s.w + cols.lo;
            float best = load<Relu>(x[arg]);
            for (int64_t r = rows.lo; r < rows.hi; r++) {
                const float* xr = x + r * s.w;
                for (int64_t c = cols.lo; c < cols.hi; c++) {
                    const float v = load<Relu>(xr[c]);
                    if (take(v, best)) best = v, arg = r * s.w + c;
                }
            }
            y[i * s.q + j] = best;
            if constexpr (Idx) idx[i * s.q + j] = int32_t(arg);
        }
    }
}

// The max pool forward, on relu(x) when Relu: each plane through the 2x2/2 path or the general one.
template <bool Relu>
void max_pool_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    const bool fast = s.kh == 2 && s.kw == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0;
    for_planes(s, [&](int64_t plane) {
        const int64_t in = plane * s.h * s.w, out = plane * s.p * s.q;
        if (idx == nullptr)  // inference: the positions are not needed, only the maxima
            fast ? max_pool_2x2<Relu, false>(s, y + out, nullptr, x + in)
                 : max_pool_general<Relu, false>(s, y + out, nullptr, x + in);
        else
            fast ? max_pool_2x2<Relu, true>(s, y + out, idx + out, x + in)
                 : max_pool_general<Relu, true>(s, y + out, idx + out, x + in);
    });
}

// The max pool backward: dx[idx] += dy in output order; when Relu, only where y > 0 (y unused otherwise).
template <bool Relu>
void max_pool_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const int64_t out = plane * s.p * s.q;
        const float* dyp = dy + out;
        const int32_t* ip = idx + out;
        if constexpr (Relu) {
            const float* yp = y + out;
            for (int64_t o = 0; o < s.p * s.q; o++)
                if (yp[o] > 0.0f) dxp[ip[o]] += dyp[o];
        } else {
            for (int64_t o = 0; o < s.p * s.q; o++) dxp[ip[o]] += dyp[o];
        }
    });
}

// Sum of x[0, n) in 16 float lanes (independent add chains, vectorised), folded pairwise.
float lane_sum(const float* x, int64_t n) {
    constexpr int kLanes = 16;
    float acc[kLanes] = {};
    int64_t r = 0;
    for (; r + kLanes <= n; r += kLanes) {
#pragma omp simd
        for (int l = 0; l < kLanes; l++) acc[l] += x[r + l];
    }
    float tail = 0;
    for (; r < n; r++) tail += x[r];
    for (int half = kLanes / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) acc[l] += acc[l + half];
    return acc[0] + tail;
}

// Sum of the window rows x [rows) x [cols) of a plane with row length w.
float window_sum(const float* x, int64_t w, Range rows, Range cols) {
    float acc = 0;
    for (int64_t r = rows.lo; r < rows.hi; r++) {
        const float* xr = x + r * w;
        for (int64_t c = cols.lo; c < cols.hi; c++) acc += xr[c];
    }
    return acc;
}

// ---------------------------------------------------------------------------- channels_last (NHWC)
// x (n, h, w, c), y (n, p, q, c): the vector of c channels at each position is the unit of work.

// Channels per task of the NHWC backwards: enough for full vectors, small enough that images of many
// channels still split into several tasks.
constexpr int64_t kChannelBlock = 64;

// Calls body(n, i) for every output row i of every image n, in parallel when the job is large enough.
template <typename Body>
void for_output_rows(const Pool2dShape& s, Body body) {
    const int64_t rows = s.n * s.p;
    const int64_t work = s.n * s.c * (s.h * s.w + s.p * s.q);
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t r = 0; r < rows; r++) body(r / s.p, r % s.p);
}

// Calls body(n, c0, c1) for every image n and block [c0, c1) of its channels, in parallel when the job is
// large enough. Each element of dx belongs to one block: no two tasks write the same element.
template <typename Body>
void for_channel_blocks(const Pool2dShape& s, Body body) {
    const int64_t blocks = (s.c + kChannelBlock - 1) / kChannelBlock;
    const int64_t tasks = s.n * blocks;
    const int64_t work = s.n * s.c * (s.h * s.w + s.p * s.q);
#pragma omp parallel for schedule(static) if (work >= kParallelOver)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t c0 = t % blocks * kChannelBlock;
        body(t / blocks, c0, std::min(c0 + kChannelBlock, s.c));
    }
}

// Channels the NHWC forwards keep in registers at a time (four SSE vectors, one AVX-512 vector).
constexpr int64_t kChunk = 16;

// Channels [c0, c0 + B) of one max pool output: best and arg are the running maxima and their positions,
// over every element of the window in row-major order, each channel in its own lane with take()'s rule.
// They start at -inf and the window's first position: the first element is then taken unless it is -inf
// itself, which leaves the same value and position (so naive's seeding with the first element, without
// a copy of it). B is kChunk or, for the last channels, 0 (then `rest` channels).
template <bool Relu, bool Idx, int64_t B>
void max_window(const Pool2dShape& s, Range rows, Range cols, const float* xn, float* yo, int32_t* io, int64_t rest) {
    const int64_t nb = B ? B : rest, nc = s.c;
    float best[kChunk];
    int32_t arg[kChunk];
    const int32_t first = int32_t(rows.lo * s.w + cols.lo);
#pragma omp simd
    for (int64_t l = 0; l < nb; l++) best[l] = -std::numeric_limits<float>::infinity(), arg[l] = first;
    for (int64_t r = rows.lo; r < rows.hi; r++)
        for (int64_t c = cols.lo; c < cols.hi; c++) {
            const int32_t pos = int32_t(r * s.w + c);
            const float* xv = xn + pos * nc;
#pragma omp simd
            for (int64_t l = 0; l < nb; l++) {
                const float v = load<Relu>(xv[l]);
                const bool t = take(v, best[l]);
                best[l] = t ? v : best[l];
                arg[l] = t ? pos : arg[l];
            }
        }
#pragma omp simd
    for (int64_t l = 0; l < nb; l++) yo[l] = best[l];
    if constexpr (Idx) {
#pragma omp simd
        for (int64_t l = 0; l < nb; l++) io[l] = arg[l];
    }
}

// Output row i of image n of the NHWC max pool, kChunk channels at a time.
template <bool Relu, bool Idx>
void max_pool_nhwc_row(const Pool2dShape& s, int64_t n, int64_t i, float* y, int32_t* idx, const float* x) {
    const int64_t nc = s.c;
    const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
    const float* xn = x + s.x_at(n, 0, 0);
    for (int64_t j = 0; j < s.q; j++) {
        const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
        const int64_t o = s.y_at(n, 0, i * s.q + j);
        int64_t c0 = 0;
        for (; c0 + kChunk <= nc; c0 += kChunk)
            max_window<Relu, Idx, kChunk>(s, rows, cols, xn + c0, y + o + c0, Idx ? idx + o + c0 : nullptr, 0);
        if (c0 < nc)
            max_window<Relu, Idx, 0>(s, rows, cols, xn + c0, y + o + c0, Idx ? idx + o + c0 : nullptr, nc - c0);
    }
}

template <bool Relu>
void max_pool_fwd_nhwc(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    for_output_rows(s, [&](int64_t n, int64_t i) {
        if (idx == nullptr)
            max_pool_nhwc_row<Relu, false>(s, n, i, y, nullptr, x);
        else
            max_pool_nhwc_row<Relu, true>(s, n, i, y, idx, x);
    });
}

// g where chosen, else -0.0: what a lane of the NHWC max pool backward adds to its element. Adding -0.0
// leaves every value's bits as they were (x + -0.0 is x, zeros of either sign and NaN included). Picked
// by bits: written as a float select, the compiler sees through it to a conditional store, which does not
// vectorise.
inline float dy_or_minus_zero(bool chosen, float g) {
    uint32_t b;
    std::memcpy(&b, &g, sizeof b);
    const uint32_t keep = 0u - uint32_t(chosen);
    b = (b & keep) | (~keep & 0x80000000u);
    float r;
    std::memcpy(&r, &b, sizeof r);
    return r;
}

// Windows up to this many elements take the backward's select path below; larger ones the scatter.
constexpr int64_t kSelectWindow = 9;

// dx[n][idx][ch] += dy in output order for each channel (naive's order per element); when Relu, only
// where y > 0. For small windows, each output visits its whole window and every element of it adds dy
// or -0.0 (a vector compare, blend and add per window element; exactly the scatter's sums, element by
// element and in the same order, as adding -0.0 changes no bit). For large windows
// that would touch too much, the adds are a scatter (the positions differ per channel, but within one
// output every lane writes its own channel: no two lanes meet).
template <bool Relu>
void max_pool_bwd_nhwc(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    const int64_t nc = s.c;
    const bool select = s.kh * s.kw <= kSelectWindow;
    for_channel_blocks(s, [&](int64_t n, int64_t c0, int64_t c1) {
        float* dxn = dx + s.x_at(n, c0, 0);
        const int64_t nb = c1 - c0;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const int64_t yo = s.y_at(n, c0, i * s.q + j);
                const int32_t* io = idx + yo;
                if (!select) {
                    for (int64_t ch = 0; ch < nb; ch++)
                        if (!Relu || y[yo + ch] > 0.0f) dxn[io[ch] * nc + ch] += dy[yo + ch];
                    continue;
                }
                const float* gy = dy + yo;
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) {
                        const int32_t pos = int32_t(r * s.w + c);
                        float* d = dxn + pos * nc;
                        if constexpr (Relu) {
                            const float* yv = y + yo;
#pragma omp simd
                            for (int64_t ch = 0; ch < nb; ch++)
                                d[ch] += dy_or_minus_zero((io[ch] == pos) & (yv[ch] > 0.0f), gy[ch]);
                        } else {
#pragma omp simd
                            for (int64_t ch = 0; ch < nb; ch++) d[ch] += dy_or_minus_zero(io[ch] == pos, gy[ch]);
                        }
                    }
            }
        }
    });
}

// Window sums of output row i of image n into y, each channel added in float in row-major window order
// (the NCHW window_sum's order), then finished by finish(sum, element count) per channel.
template <bool Adaptive, typename Finish>
void avg_pool_nhwc_row(const Pool2dShape& s, int64_t n, int64_t i, float* y, const float* x, Finish finish) {
    const int64_t nc = s.c;
    const Range rows = Adaptive ? adaptive_window(i, s.p, s.h) : window(i, s.stride_h, s.pad_h, s.kh, s.h);
    const float* xn = x + s.x_at(n, 0, 0);
    for (int64_t j = 0; j < s.q; j++) {
        const Range cols = Adaptive ? adaptive_window(j, s.q, s.w) : window(j, s.stride_w, s.pad_w, s.kw, s.w);
        const int64_t count = (rows.hi - rows.lo) * (cols.hi - cols.lo);
        float* yo = y + s.y_at(n, 0, i * s.q + j);
#pragma omp simd
        for (int64_t ch = 0; ch < nc; ch++) yo[ch] = 0.0f;
        for (int64_t r = rows.lo; r < rows.hi; r++)
            for (int64_t c = cols.lo; c < cols.hi; c++) {
                const float* xv = xn + (r * s.w + c) * nc;
#pragma omp simd
                for (int64_t ch = 0; ch < nc; ch++) yo[ch] += xv[ch];
            }
#pragma omp simd
        for (int64_t ch = 0; ch < nc; ch++) yo[ch] = finish(yo[ch], count);
    }
}

// The average backwards in NHWC: for each output in order, g = its gradient share (computed once per
// channel, as naive does), added to every element of its window. scale(dy, count) gives the share.
template <bool Adaptive, typename Scale>
void avg_pool_bwd_nhwc(const Pool2dShape& s, float* dx, const float* dy, Scale scale) {
    const int64_t nc = s.c;
    for_channel_blocks(s, [&](int64_t n, int64_t c0, int64_t c1) {
        float* dxn = dx + s.x_at(n, c0, 0);
        const int64_t nb = c1 - c0;
        float g[kChannelBlock];
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = Adaptive ? adaptive_window(i, s.p, s.h) : window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = Adaptive ? adaptive_window(j, s.q, s.w) : window(j, s.stride_w, s.pad_w, s.kw, s.w);
                const int64_t count = (rows.hi - rows.lo) * (cols.hi - cols.lo);
                const float* dyo = dy + s.y_at(n, c0, i * s.q + j);
#pragma omp simd
                for (int64_t ch = 0; ch < nb; ch++) g[ch] = scale(dyo[ch], count);
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) {
                        float* d = dxn + (r * s.w + c) * nc;
#pragma omp simd
                        for (int64_t ch = 0; ch < nb; ch++) d[ch] += g[ch];
                    }
            }
        }
    });
}

}  // namespace

void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    if (s.channels_last) return max_pool_fwd_nhwc<false>(s, y, idx, x);
    max_pool_fwd<false>(s, y, idx, x);
}

void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx) {
    if (s.channels_last) return max_pool_bwd_nhwc<false>(s, dx, dy, idx, nullptr);
    max_pool_bwd<false>(s, dx, dy, idx, nullptr);
}

void relu_max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) {
    if (s.channels_last) return max_pool_fwd_nhwc<true>(s, y, idx, x);
    max_pool_fwd<true>(s, y, idx, x);
}

void relu_max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx, const float* y) {
    if (s.channels_last) return max_pool_bwd_nhwc<true>(s, dx, dy, idx, y);
    max_pool_bwd<true>(s, dx, dy, idx, y);
}

void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) {
    const float inv = float(1.0 / double(s.kh * s.kw));
    if (s.channels_last) {
        for_output_rows(s, [&](int64_t n, int64_t i) {
            avg_pool_nhwc_row<false>(s, n, i, y, x, [inv](float sum, int64_t) { return sum * inv; });
        });
        return;
    }
    for_planes(s, [&](int64_t plane) {
        const float* xp = x + plane * s.h * s.w;
        float* yp = y + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++)
                yp[i * s.q + j] = window_sum(xp, s.w, rows, window(j, s.stride_w, s.pad_w, s.kw, s.w)) * inv;
        }
    });
}

void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) {
    const float inv = 1.0f / float(s.kh * s.kw);  // naive's expression, so naive's bits
    if (s.channels_last) return avg_pool_bwd_nhwc<false>(s, dx, dy, [inv](float g, int64_t) { return g * inv; });
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const float* dyp = dy + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                const float g = dyp[i * s.q + j] * inv;
                for (int64_t r = rows.lo; r < rows.hi; r++) {
                    float* d = dxp + r * s.w;
#pragma omp simd
                    for (int64_t c = cols.lo; c < cols.hi; c++) d[c] += g;
                }
            }
        }
    });
}

void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) {
    if (s.channels_last) {
        // The global pool too: its window is the whole plane, a column sum over the h * w positions.
        for_output_rows(s, [&](int64_t n, int64_t i) {
            avg_pool_nhwc_row<true>(s, n, i, y, x,
                                    [](float sum, int64_t count) { return float(double(sum) / double(count)); });
        });
        return;
    }
    const bool global = s.p == 1 && s.q == 1;
    for_planes(s, [&](int64_t plane) {
        const float* xp = x + plane * s.h * s.w;
        float* yp = y + plane * s.p * s.q;
        if (global) {  // the whole plane is one contiguous run
            yp[0] = float(double(lane_sum(xp, s.h * s.w)) / double(s.h * s.w));
            return;
        }
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const float sum = window_sum(xp, s.w, rows, cols);
                yp[i * s.q + j] = float(double(sum) / double((rows.hi - rows.lo) * (cols.hi - cols.lo)));
            }
        }
    });
}

void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) {
    if (s.channels_last)
        return avg_pool_bwd_nhwc<true>(s, dx, dy, [](float g, int64_t count) { return g / float(count); });
    for_planes(s, [&](int64_t plane) {
        float* dxp = dx + plane * s.h * s.w;
        const float* dyp = dy + plane * s.p * s.q;
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const float g = dyp[i * s.q + j] / float((rows.hi - rows.lo) * (cols.hi - cols.lo));
                for (int64_t r = rows.lo; r < rows.hi; r++) {
                    float* d = dxp + r * s.w;
#pragma omp simd
                    for (int64_t c = cols.lo; c < cols.hi; c++) d[c] += g;
                }
            }
        }
    });
}

}  // namespace dyad::omp
