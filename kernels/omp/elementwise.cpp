// Elementwise kernels, OpenMP. Same results as the naive twins bit for bit: each element is computed by
// the same expression. Differences: the op is a template parameter (the switch is hoisted out of the
// loop so the loop vectorises), contiguous operands take a flat loop, others walk the innermost dim with
// its strides; threads split the flat index range.
#include "../elementwise.h"

#include <algorithm>
#include <cmath>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace dyad::omp {

namespace {

// Below this many elements the thread start-up costs more than the work.
constexpr int64_t kParallelOver = 1 << 15;

template <BinaryOp OP> inline float bin(float a, float b) {
    if constexpr (OP == BinaryOp::add) return a + b;
    if constexpr (OP == BinaryOp::sub) return a - b;
    if constexpr (OP == BinaryOp::mul) return a * b;
    if constexpr (OP == BinaryOp::div) return a / b;
    if constexpr (OP == BinaryOp::pow) return std::pow(a, b);
}

template <UnaryOp OP> inline float un(float x, float p0, float p1) {
    if constexpr (OP == UnaryOp::neg) return -x;
    if constexpr (OP == UnaryOp::exp) return std::exp(x);
    if constexpr (OP == UnaryOp::log) return std::log(x);
    if constexpr (OP == UnaryOp::sqrt) return std::sqrt(x);
    if constexpr (OP == UnaryOp::add_scalar) return x + p0;
    if constexpr (OP == UnaryOp::mul_scalar) return x * p0;
    if constexpr (OP == UnaryOp::rsub_scalar) return p0 - x;
    if constexpr (OP == UnaryOp::div_scalar) return x / p0;
    if constexpr (OP == UnaryOp::rdiv_scalar) return p0 / x;
    if constexpr (OP == UnaryOp::pow_scalar) return std::pow(x, p0);
    if constexpr (OP == UnaryOp::clamp) return x < p0 ? p0 : (x > p1 ? p1 : x);
}

template <UnaryOp OP> inline float deriv(float x, float y, float p0, float p1) {
    if constexpr (OP == UnaryOp::neg) return -1.0f;
    if constexpr (OP == UnaryOp::exp) return y;
    if constexpr (OP == UnaryOp::log) return 1.0f / x;
    if constexpr (OP == UnaryOp::sqrt) return 0.5f / y;
    if constexpr (OP == UnaryOp::add_scalar) return 1.0f;
    if constexpr (OP == UnaryOp::mul_scalar) return p0;
    if constexpr (OP == UnaryOp::rsub_scalar) return -1.0f;
    if constexpr (OP == UnaryOp::div_scalar) return 1.0f / p0;
    if constexpr (OP == UnaryOp::rdiv_scalar) return -p0 / (x * x);
    if constexpr (OP == UnaryOp::pow_scalar) return p0 * std::pow(x, p0 - 1.0f);
    if constexpr (OP == UnaryOp::clamp) return (x >= p0 && x <= p1) ? 1.0f : 0.0f;
}

// Calls body(out_off, in1_off, in2_off, count, stride0, stride1, stride2) for runs along the innermost dim,
// covering flat indices [begin, end).
template <typename Body> void for_runs(const StridedShape& s, int64_t begin, int64_t end, Body body) {
    const int last = s.ndim - 1;
    const int64_t inner = s.size[last];
    int64_t i = begin;
    while (i < end) {
        const int64_t j = i % inner;
        const int64_t count = std::min(inner - j, end - i);
        body(s.offset(0, i), s.offset(1, i), s.offset(2, i), count, s.stride[0][last], s.stride[1][last],
             s.stride[2][last]);
        i += count;
    }
}

template <typename Body> void parallel_range(int64_t n, Body body) {
    if (n < kParallelOver) {
        body(int64_t(0), n);
        return;
    }
#pragma omp parallel
    {
#ifdef _OPENMP
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        const int64_t nt = 1, t = 0;
#endif
        const int64_t chunk = (n + nt - 1) / nt;
        const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
        if (b < e) body(b, e);
    }
}

template <BinaryOp OP> void binary_impl(float* out, const float* a, const float* b, const StridedShape& s) {
    const int64_t n = s.numel();
    if (s.contiguous(0) && s.contiguous(1) && s.contiguous(2)) {
        parallel_range(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] = bin<OP>(a[i], b[i]);
        });
        return;
    }
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        for_runs(s, lo, hi, [&](int64_t o, int64_t x, int64_t y, int64_t c, int64_t so, int64_t sx, int64_t sy) {
            if (so == 1 && sx == 1 && sy == 0) {  // row + broadcast scalar (bias-like)
                const float bv = b[y];
#pragma omp simd
                for (int64_t k = 0; k < c; k++) out[o + k] = bin<OP>(a[x + k], bv);
            } else {
                for (int64_t k = 0; k < c; k++) out[o + k * so] = bin<OP>(a[x + k * sx], b[y + k * sy]);
            }
        });
    });
}

template <UnaryOp OP> void unary_impl(float* out, const float* x, const StridedShape& s, float p0, float p1) {
    const int64_t n = s.numel();
    if (s.contiguous(0) && s.contiguous(1)) {
        parallel_range(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] = un<OP>(x[i], p0, p1);
        });
        return;
    }
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        for_runs(s, lo, hi, [&](int64_t o, int64_t xi, int64_t, int64_t c, int64_t so, int64_t sx, int64_t) {
            for (int64_t k = 0; k < c; k++) out[o + k * so] = un<OP>(x[xi + k * sx], p0, p1);
        });
    });
}

template <UnaryOp OP>
void unary_bwd_impl(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        if (y) {
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) dx[i] += dy[i] * deriv<OP>(x[i], y[i], p0, p1);
        } else {
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) dx[i] += dy[i] * deriv<OP>(x[i], 0.0f, p0, p1);
        }
    });
}

}  // namespace

void binary_fwd(BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s) {
    switch (op) {
    case BinaryOp::add: return binary_impl<BinaryOp::add>(out, a, b, s);
    case BinaryOp::sub: return binary_impl<BinaryOp::sub>(out, a, b, s);
    case BinaryOp::mul: return binary_impl<BinaryOp::mul>(out, a, b, s);
    case BinaryOp::div: return binary_impl<BinaryOp::div>(out, a, b, s);
    case BinaryOp::pow: return binary_impl<BinaryOp::pow>(out, a, b, s);
    }
}

#define DYAD_UNARY_CASES(CALL)                      \
    switch (op) {                                   \
    case UnaryOp::neg: return CALL(UnaryOp::neg);   \
    case UnaryOp::exp: return CALL(UnaryOp::exp);   \
    case UnaryOp::log: return CALL(UnaryOp::log);   \
    case UnaryOp::sqrt: return CALL(UnaryOp::sqrt); \
    case UnaryOp::add_scalar: return CALL(UnaryOp::add_scalar);   \
    case UnaryOp::mul_scalar: return CALL(UnaryOp::mul_scalar);   \
    case UnaryOp::rsub_scalar: return CALL(UnaryOp::rsub_scalar); \
    case UnaryOp::div_scalar: return CALL(UnaryOp::div_scalar);   \
    case UnaryOp::rdiv_scalar: return CALL(UnaryOp::rdiv_scalar); \
    case UnaryOp::pow_scalar: return CALL(UnaryOp::pow_scalar);   \
    case UnaryOp::clamp: return CALL(UnaryOp::clamp);             \
    }

void unary_fwd(UnaryOp op, float* out, const float* x, const StridedShape& s, float p0, float p1) {
#define DYAD_CALL(OP) unary_impl<OP>(out, x, s, p0, p1)
    DYAD_UNARY_CASES(DYAD_CALL)
#undef DYAD_CALL
}

void unary_bwd(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
#define DYAD_CALL(OP) unary_bwd_impl<OP>(dx, dy, x, y, n, p0, p1)
    DYAD_UNARY_CASES(DYAD_CALL)
#undef DYAD_CALL
}

template <typename T> void fill(T* out, T value, int64_t n) {
    parallel_range(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++) out[i] = value;
    });
}

template <typename TO, typename TI> void copy(TO* out, const TI* in, const StridedShape& s) {
    const int64_t n = s.numel();
    if (s.contiguous(0) && s.contiguous(1)) {
        parallel_range(n, [&](int64_t lo, int64_t hi) {
#pragma omp simd
            for (int64_t i = lo; i < hi; i++) out[i] = static_cast<TO>(in[i]);
        });
        return;
    }
    parallel_range(n, [&](int64_t lo, int64_t hi) {
        for_runs(s, lo, hi, [&](int64_t o, int64_t x, int64_t, int64_t c, int64_t so, int64_t sx, int64_t) {
            for (int64_t k = 0; k < c; k++) out[o + k * so] = static_cast<TO>(in[x + k * sx]);
        });
    });
}

template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void fill<int32_t>(int32_t*, int32_t, int64_t);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t);

#define DYAD_INSTANTIATE_COPY_FROM(TI)                                         \
    template void copy<float, TI>(float*, const TI*, const StridedShape&);     \
    template void copy<double, TI>(double*, const TI*, const StridedShape&);   \
    template void copy<int32_t, TI>(int32_t*, const TI*, const StridedShape&); \
    template void copy<uint8_t, TI>(uint8_t*, const TI*, const StridedShape&);
DYAD_INSTANTIATE_COPY_FROM(float)
DYAD_INSTANTIATE_COPY_FROM(double)
DYAD_INSTANTIATE_COPY_FROM(int32_t)
DYAD_INSTANTIATE_COPY_FROM(uint8_t)

}  // namespace dyad::omp
