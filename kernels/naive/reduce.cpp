// Reduction kernels, naive: x is (outer, reduce, inner), results (outer, inner).
#include "../reduce.h"

#include <cmath>

namespace dyad::naive {

template <typename T>
void sum_fwd(T* y, const T* x, const ReduceShape& s, T scale) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            double acc = 0;  // double: the reference should be the accurate one
            for (int64_t r = 0; r < s.reduce; r++) acc += double(x[(o * s.reduce + r) * s.inner + i]);
            y[o * s.inner + i] = T(acc * double(scale));
        }
}

template <typename T>
void sum_bwd(T* dx, const T* dy, const ReduceShape& s, T scale) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t r = 0; r < s.reduce; r++)
            for (int64_t i = 0; i < s.inner; i++) dx[(o * s.reduce + r) * s.inner + i] += scale * dy[o * s.inner + i];
}

// The first extreme of each (o, i) column, a NaN winning over numbers (the first NaN): the maximum for
// max_fwd, the minimum for min_fwd.
template <bool Min, typename T>
static void extreme_fwd(T* y, int32_t* idx, const T* x, const ReduceShape& s) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++) {
            T best = x[o * s.reduce * s.inner + i];
            int64_t best_r = 0;
            for (int64_t r = 1; r < s.reduce && !std::isnan(best); r++) {
                const T v = x[(o * s.reduce + r) * s.inner + i];
                const bool better = Min ? v < best : v > best;  // strict: the first extreme wins
                if (better || std::isnan(v)) best = v, best_r = r;
            }
            if (y) y[o * s.inner + i] = best;
            idx[o * s.inner + i] = int32_t(best_r);
        }
}

template <typename T>
void max_fwd(T* y, int32_t* idx, const T* x, const ReduceShape& s) {
    extreme_fwd<false>(y, idx, x, s);
}

template <typename T>
void min_fwd(T* y, int32_t* idx, const T* x, const ReduceShape& s) {
    extreme_fwd<true>(y, idx, x, s);
}

template <typename T>
void max_bwd(T* dx, const T* dy, const int32_t* idx, const ReduceShape& s) {
    for (int64_t o = 0; o < s.outer; o++)
        for (int64_t i = 0; i < s.inner; i++)
            dx[(o * s.reduce + idx[o * s.inner + i]) * s.inner + i] += dy[o * s.inner + i];
}

#define DYAD_INSTANTIATE(T)                                               \
    template void sum_fwd<T>(T*, const T*, const ReduceShape&, T);        \
    template void sum_bwd<T>(T*, const T*, const ReduceShape&, T);        \
    template void max_fwd<T>(T*, int32_t*, const T*, const ReduceShape&); \
    template void min_fwd<T>(T*, int32_t*, const T*, const ReduceShape&); \
    template void max_bwd<T>(T*, const T*, const int32_t*, const ReduceShape&);
DYAD_INSTANTIATE(float)
DYAD_INSTANTIATE(double)

}  // namespace dyad::naive
