// Pooling kernels, naive: one output at a time (in either layout, through the shape's offsets), the window clipped to
// the input (kernels/pool.h). The fused relu + max pool is the max pool's scan with relu applied to each element as it
// is read. The averages add in double and round once: the reference should be the accurate one.
#include "../pool.h"

#include <algorithm>
#include <cmath>

namespace dyad::naive {

namespace {

// Rows [lo, hi) of the input that fixed window `i` covers (the padding clipped off).
struct Range {
    int64_t lo, hi;
};

Range window(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t size) {
    const int64_t start = i * stride - pad;
    return {std::max<int64_t>(start, 0), std::min(start + k, size)};
}

// Adaptive window i of `out` over `size`: [floor(i * size / out), ceil((i + 1) * size / out)).
Range adaptive_window(int64_t i, int64_t out, int64_t size) {
    return {i * size / out, ((i + 1) * size + out - 1) / out};
}

// max_pool2d_fwd, on relu(x) when Relu (relu as relu_fwd: x < 0 ? 0 : x, applied to each element read).
template <bool Relu, typename T>
void max_pool_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x) {
    for (int64_t plane = 0; plane < s.n * s.c; plane++) {
        const int64_t n = plane / s.c, ch = plane % s.c;
        auto at = [&](int64_t k) {
            const T v = x[s.x_at(n, ch, k)];
            return Relu && v < T(0) ? T(0) : v;
        };
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                int64_t best = rows.lo * s.w + cols.lo;
                for (int64_t r = rows.lo; r < rows.hi && !std::isnan(at(best)); r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) {
                        const T v = at(r * s.w + c);
                        if (v > at(best) || std::isnan(v)) {  // strict >: the first maximum wins
                            best = r * s.w + c;
                            if (std::isnan(v)) break;
                        }
                    }
                const int64_t o = s.y_at(n, ch, i * s.q + j);
                y[o] = at(best);
                if (idx) idx[o] = int32_t(best);
            }
        }
    }
}

}  // namespace

template <typename T>
void max_pool2d_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x) {
    max_pool_fwd<false>(s, y, idx, x);
}

template <typename T>
void max_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx) {
    for (int64_t n = 0; n < s.n; n++)
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t o = 0; o < s.p * s.q; o++) {
                const int64_t yo = s.y_at(n, c, o);
                dx[s.x_at(n, c, idx[yo])] += dy[yo];
            }
}

template <typename T>
void relu_max_pool2d_fwd(const Pool2dShape& s, T* y, int32_t* idx, const T* x) {
    max_pool_fwd<true>(s, y, idx, x);
}

template <typename T>
void relu_max_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy, const int32_t* idx, const T* y) {
    for (int64_t n = 0; n < s.n; n++)
        for (int64_t c = 0; c < s.c; c++)
            for (int64_t o = 0; o < s.p * s.q; o++) {
                const int64_t yo = s.y_at(n, c, o);
                if (y[yo] > T(0)) dx[s.x_at(n, c, idx[yo])] += dy[yo];
            }
}

template <typename T>
void avg_pool2d_fwd(const Pool2dShape& s, T* y, const T* x) {
    const double inv = 1.0 / double(s.kh * s.kw);
    for (int64_t plane = 0; plane < s.n * s.c; plane++) {
        const int64_t n = plane / s.c, ch = plane % s.c;
        auto xp = [&](int64_t k) { return x[s.x_at(n, ch, k)]; };
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                double acc = 0;
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) acc += double(xp(r * s.w + c));
                y[s.y_at(n, ch, i * s.q + j)] = T(acc * inv);
            }
        }
    }
}

template <typename T>
void avg_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy) {
    const T inv = T(1) / T(s.kh * s.kw);
    for (int64_t plane = 0; plane < s.n * s.c; plane++) {
        const int64_t n = plane / s.c, ch = plane % s.c;
        auto dxp = [&](int64_t k) -> T& { return dx[s.x_at(n, ch, k)]; };
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = window(i, s.stride_h, s.pad_h, s.kh, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = window(j, s.stride_w, s.pad_w, s.kw, s.w);
                const T g = dy[s.y_at(n, ch, i * s.q + j)] * inv;
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) dxp(r * s.w + c) += g;
            }
        }
    }
}

template <typename T>
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, T* y, const T* x) {
    for (int64_t plane = 0; plane < s.n * s.c; plane++) {
        const int64_t n = plane / s.c, ch = plane % s.c;
        auto xp = [&](int64_t k) { return x[s.x_at(n, ch, k)]; };
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                double acc = 0;
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) acc += double(xp(r * s.w + c));
                y[s.y_at(n, ch, i * s.q + j)] = T(acc / double((rows.hi - rows.lo) * (cols.hi - cols.lo)));
            }
        }
    }
}

template <typename T>
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, T* dx, const T* dy) {
    for (int64_t plane = 0; plane < s.n * s.c; plane++) {
        const int64_t n = plane / s.c, ch = plane % s.c;
        auto dxp = [&](int64_t k) -> T& { return dx[s.x_at(n, ch, k)]; };
        for (int64_t i = 0; i < s.p; i++) {
            const Range rows = adaptive_window(i, s.p, s.h);
            for (int64_t j = 0; j < s.q; j++) {
                const Range cols = adaptive_window(j, s.q, s.w);
                const T g = dy[s.y_at(n, ch, i * s.q + j)] / T((rows.hi - rows.lo) * (cols.hi - cols.lo));
                for (int64_t r = rows.lo; r < rows.hi; r++)
                    for (int64_t c = cols.lo; c < cols.hi; c++) dxp(r * s.w + c) += g;
            }
        }
    }
}

#define DYAD_INSTANTIATE(T)                                                                           \
    template void max_pool2d_fwd<T>(const Pool2dShape&, T*, int32_t*, const T*);                      \
    template void max_pool2d_bwd<T>(const Pool2dShape&, T*, const T*, const int32_t*);                \
    template void relu_max_pool2d_fwd<T>(const Pool2dShape&, T*, int32_t*, const T*);                 \
    template void relu_max_pool2d_bwd<T>(const Pool2dShape&, T*, const T*, const int32_t*, const T*); \
    template void avg_pool2d_fwd<T>(const Pool2dShape&, T*, const T*);                                \
    template void avg_pool2d_bwd<T>(const Pool2dShape&, T*, const T*);                                \
    template void adaptive_avg_pool2d_fwd<T>(const Pool2dShape&, T*, const T*);                       \
    template void adaptive_avg_pool2d_bwd<T>(const Pool2dShape&, T*, const T*);
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive
