// Elementwise kernels, OpenMP. Results equal the naive twins bit for bit: each element is computed by the
// same expression, without reassociation. (Two build settings would break that, and the exact parity tests
// would show it: -ffast-math, which lets omp simd call the vector libm, and an -march with FMA, which lets
// GCC contract a * b + c differently in the two files.) What differs is the iteration: the op is a
// template parameter (the switch leaves the loop, which vectorises), threads split the flat index range,
// and each thread walks its part as runs along the innermost dim.
#include "../elementwise.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace dyad::omp {

namespace {

// ---------------------------------------------------------------------------- threading
// Below this many elements one thread does the work. Measured on the 2-vCPU project VM: an OpenMP
// fork/join of 2 threads costs ~1 us, and two threads beat one on an L1-resident add from about 4K
// elements (1.5x at 16K). The threshold sits higher, at 16K (~4 us of work), because a thread that the
// shared VM has descheduled costs tens of microseconds, and the gain below 16K is under 1 us.
constexpr int64_t kParallelOver = 1 << 14;

// body(lo, hi) over [0, n) split into one contiguous chunk per thread. Chunks start on 16-element
// boundaries so two threads never write the same 64-byte cache line of a float output.
template <typename Body>
void parallel_range(int64_t n, const Body& body) {
    if (n < kParallelOver) {
        if (n > 0) body(int64_t(0), n);
        return;
    }
#pragma omp parallel
    {
#ifdef _OPENMP
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
#else
        const int64_t nt = 1, t = 0;
#endif
        const int64_t chunk = ((n + nt - 1) / nt + 15) / 16 * 16;
        const int64_t lo = std::min(n, t * chunk), hi = std::min(n, lo + chunk);
        if (lo < hi) body(lo, hi);
    }
}

// Walks flat indices [begin, end) of s as runs along the innermost dim: body(o0, o1, o2, count) gets the
// three operands' element offsets at the start of each run. The offsets are decoded once, at begin, and
// then stepped like an odometer, so a run costs a few adds however many dims there are, not a division
// per dim and operand (which cost up to 1.4x on short runs: the transposed 16x16 copy in the benchmark).
template <typename Body>
void for_runs(const StridedShape& s, int64_t begin, int64_t end, const Body& body) {
    if (begin >= end) return;
    const int last = s.ndim - 1;
    int64_t idx[kMaxDims];
    int64_t off[3] = {0, 0, 0};
    int64_t flat = begin;
    for (int d = last; d >= 0; d--) {
        idx[d] = flat % s.size[d];
        flat /= s.size[d];
        for (int o = 0; o < 3; o++) off[o] += idx[d] * s.stride[o][d];
    }
    for (int64_t i = begin;;) {
        const int64_t count = std::min(s.size[last] - idx[last], end - i);
        body(off[0], off[1], off[2], count);
        i += count;
        if (i >= end) return;
        // The run ended at the end of its row: back to column 0, carry into the outer dims.
        for (int o = 0; o < 3; o++) off[o] -= idx[last] * s.stride[o][last];
        idx[last] = 0;
        for (int d = last - 1; d >= 0; d--) {
            idx[d]++;
            for (int o = 0; o < 3; o++) off[o] += s.stride[o][d];
            if (idx[d] < s.size[d]) break;
            for (int o = 0; o < 3; o++) off[o] -= s.size[d] * s.stride[o][d];
            idx[d] = 0;
        }
    }
}

// ---------------------------------------------------------------------------- element expressions
// Copies of naive's expressions, one instantiation per op.
template <BinaryOp OP>
inline float bin(float a, float b) {
    if constexpr (OP == BinaryOp::add) return a + b;
    if constexpr (OP == BinaryOp::sub) return a - b;
    if constexpr (OP == BinaryOp::mul) return a * b;
    if constexpr (OP == BinaryOp::div) return a / b;
    if constexpr (OP == BinaryOp::pow) return std::pow(a, b);
}

template <UnaryOp OP>
inline float un(float x, float p0, float p1) {
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
    if constexpr (OP == UnaryOp::clamp) return x < p0 ? p0 : (x > p1 ? p1 : x);  // NaN passes through
    if constexpr (OP == UnaryOp::abs) return std::abs(x);
    if constexpr (OP == UnaryOp::sigmoid) {
        if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
        const float e = std::exp(x);
        return e / (1.0f + e);
    }
    if constexpr (OP == UnaryOp::tanh) return std::tanh(x);
}

// f'(x) given x and y = f(x) (y is only read by exp, sqrt, sigmoid and tanh).
template <UnaryOp OP>
inline float deriv(float x, float y, float p0, float p1) {
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
    if constexpr (OP == UnaryOp::abs) return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    if constexpr (OP == UnaryOp::sigmoid) return y * (1.0f - y);
    if constexpr (OP == UnaryOp::tanh) return 1.0f - y * y;
}

template <CompareOp OP, typename T>
inline bool cmp(T a, T b) {
    if constexpr (OP == CompareOp::eq) return a == b;
    if constexpr (OP == CompareOp::ne) return a != b;
    if constexpr (OP == CompareOp::lt) return a < b;
    if constexpr (OP == CompareOp::le) return a <= b;
    if constexpr (OP == CompareOp::gt) return a > b;
    if constexpr (OP == CompareOp::ge) return a >= b;
}

// ---------------------------------------------------------------------------- runs
// The inner loops take their pointers and scalars by value: read through a lambda's captures they would
// be reloaded after every store (the store might alias them), which blocks vectorisation.
template <BinaryOp OP>
void binary_run(float* out, const float* a, const float* b, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = bin<OP>(a[i], b[i]);
}

// b is one value for the whole run: a bias broadcast over a channel's H*W positions.
template <BinaryOp OP>
void binary_run_scalar_b(float* out, const float* a, float b, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = bin<OP>(a[i], b);
}

template <BinaryOp OP>
void binary_run_strided(float* out, int64_t so, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i * so] = bin<OP>(a[i * sa], b[i * sb]);
}

template <UnaryOp OP>
void unary_run(float* out, const float* x, int64_t n, float p0, float p1) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = un<OP>(x[i], p0, p1);
}

template <UnaryOp OP>
void unary_run_strided(float* out, int64_t so, const float* x, int64_t sx, int64_t n, float p0, float p1) {
    for (int64_t i = 0; i < n; i++) out[i * so] = un<OP>(x[i * sx], p0, p1);
}

template <UnaryOp OP>
void unary_bwd_run(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
    if (y) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * deriv<OP>(x[i], y[i], p0, p1);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * deriv<OP>(x[i], 0.0f, p0, p1);
    }
}

// Comparison and selection runs: unit strides vectorise; anything else (a broadcast operand included) takes
// the strided loop.
template <CompareOp OP, typename T>
void compare_run(uint8_t* out, int64_t so, const T* a, int64_t sa, const T* b, int64_t sb, int64_t n) {
    if (so == 1 && sa == 1 && sb == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = uint8_t(cmp<OP>(a[i], b[i]));
    } else {
        for (int64_t i = 0; i < n; i++) out[i * so] = uint8_t(cmp<OP>(a[i * sa], b[i * sb]));
    }
}

template <typename T>
void where_run(T* out, const uint8_t* cond, int64_t so, const T* a, int64_t sa, const T* b, int64_t sb, int64_t n) {
    if (so == 1 && sa == 1 && sb == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = cond[i] ? a[i] : b[i];
    } else {
        for (int64_t i = 0; i < n; i++) out[i * so] = cond[i * so] ? a[i * sa] : b[i * sb];
    }
}

template <typename T>
void fill_run(T* out, T value, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = value;
}

template <typename TO, typename TI>
void copy_run(TO* out, const TI* in, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = static_cast<TO>(in[i]);
}

template <typename TO, typename TI>
void copy_run_strided(TO* out, int64_t so, const TI* in, int64_t si, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i * so] = static_cast<TO>(in[i * si]);
}

// ---------------------------------------------------------------------------- drivers
// The inner strides are the same for every run, so the run kernel is picked once per call. Contiguous
// operands arrive merged into one dim (make_strided) and take the unit-stride run over a thread's whole
// chunk.
template <BinaryOp OP>
void binary_impl(float* out, const float* a, const float* b, const StridedShape& s) {
    const int last = s.ndim - 1;
    const int64_t so = s.stride[0][last], sa = s.stride[1][last], sb = s.stride[2][last];
    parallel_range(s.numel(), [&](int64_t lo, int64_t hi) {
        if (so == 1 && sa == 1 && sb == 1) {
            for_runs(s, lo, hi,
                     [=](int64_t o, int64_t i, int64_t j, int64_t c) { binary_run<OP>(out + o, a + i, b + j, c); });
        } else if (so == 1 && sa == 1 && sb == 0) {
            for_runs(s, lo, hi, [=](int64_t o, int64_t i, int64_t j, int64_t c) {
                binary_run_scalar_b<OP>(out + o, a + i, b[j], c);
            });
        } else {
            for_runs(s, lo, hi, [=](int64_t o, int64_t i, int64_t j, int64_t c) {
                binary_run_strided<OP>(out + o, so, a + i, sa, b + j, sb, c);
            });
        }
    });
}

template <UnaryOp OP>
void unary_impl(float* out, const float* x, const StridedShape& s, float p0, float p1) {
    const int last = s.ndim - 1;
    const int64_t so = s.stride[0][last], sx = s.stride[1][last];
    parallel_range(s.numel(), [&](int64_t lo, int64_t hi) {
        if (so == 1 && sx == 1) {
            for_runs(s, lo, hi,
                     [=](int64_t o, int64_t i, int64_t, int64_t c) { unary_run<OP>(out + o, x + i, c, p0, p1); });
        } else {
            for_runs(s, lo, hi, [=](int64_t o, int64_t i, int64_t, int64_t c) {
                unary_run_strided<OP>(out + o, so, x + i, sx, c, p0, p1);
            });
        }
    });
}

template <UnaryOp OP>
void unary_bwd_impl(float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
    parallel_range(n, [=](int64_t lo, int64_t hi) {
        unary_bwd_run<OP>(dx + lo, dy + lo, x + lo, y ? y + lo : nullptr, hi - lo, p0, p1);
    });
}

// ---------------------------------------------------------------------------- op dispatch
// Calls f(Op<OP>{}) with the runtime op as a compile-time constant, so the callee instantiates one loop
// per op.
template <auto V>
using Op = std::integral_constant<decltype(V), V>;

template <typename F>
void with_binary_op(BinaryOp op, const F& f) {
    switch (op) {
        case BinaryOp::add:
            return f(Op<BinaryOp::add>{});
        case BinaryOp::sub:
            return f(Op<BinaryOp::sub>{});
        case BinaryOp::mul:
            return f(Op<BinaryOp::mul>{});
        case BinaryOp::div:
            return f(Op<BinaryOp::div>{});
        case BinaryOp::pow:
            return f(Op<BinaryOp::pow>{});
    }
}

template <typename F>
void with_unary_op(UnaryOp op, const F& f) {
    switch (op) {
        case UnaryOp::neg:
            return f(Op<UnaryOp::neg>{});
        case UnaryOp::exp:
            return f(Op<UnaryOp::exp>{});
        case UnaryOp::log:
            return f(Op<UnaryOp::log>{});
        case UnaryOp::sqrt:
            return f(Op<UnaryOp::sqrt>{});
        case UnaryOp::add_scalar:
            return f(Op<UnaryOp::add_scalar>{});
        case UnaryOp::mul_scalar:
            return f(Op<UnaryOp::mul_scalar>{});
        case UnaryOp::rsub_scalar:
            return f(Op<UnaryOp::rsub_scalar>{});
        case UnaryOp::div_scalar:
            return f(Op<UnaryOp::div_scalar>{});
        case UnaryOp::rdiv_scalar:
            return f(Op<UnaryOp::rdiv_scalar>{});
        case UnaryOp::pow_scalar:
            return f(Op<UnaryOp::pow_scalar>{});
        case UnaryOp::clamp:
            return f(Op<UnaryOp::clamp>{});
        case UnaryOp::abs:
            return f(Op<UnaryOp::abs>{});
        case UnaryOp::sigmoid:
            return f(Op<UnaryOp::sigmoid>{});
        case UnaryOp::tanh:
            return f(Op<UnaryOp::tanh>{});
    }
}

template <typename F>
void with_compare_op(CompareOp op, const F& f) {
    switch (op) {
        case CompareOp::eq:
            return f(Op<CompareOp::eq>{});
        case CompareOp::ne:
            return f(Op<CompareOp::ne>{});
        case CompareOp::lt:
            return f(Op<CompareOp::lt>{});
        case CompareOp::le:
            return f(Op<CompareOp::le>{});
        case CompareOp::gt:
            return f(Op<CompareOp::gt>{});
        case CompareOp::ge:
            return f(Op<CompareOp::ge>{});
    }
}

}  // namespace

// ---------------------------------------------------------------------------- entry points
void binary_fwd(BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s) {
    with_binary_op(op, [&](auto o) { binary_impl<decltype(o)::value>(out, a, b, s); });
}

void unary_fwd(UnaryOp op, float* out, const float* x, const StridedShape& s, float p0, float p1) {
    with_unary_op(op, [&](auto o) { unary_impl<decltype(o)::value>(out, x, s, p0, p1); });
}

void unary_bwd(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
    with_unary_op(op, [&](auto o) { unary_bwd_impl<decltype(o)::value>(dx, dy, x, y, n, p0, p1); });
}

template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s) {
    const int last = s.ndim - 1;
    const int64_t so = s.stride[0][last], sa = s.stride[1][last], sb = s.stride[2][last];
    with_compare_op(op, [&](auto o) {
        constexpr CompareOp OP = decltype(o)::value;
        parallel_range(s.numel(), [&](int64_t lo, int64_t hi) {
            for_runs(s, lo, hi, [=](int64_t po, int64_t pa, int64_t pb, int64_t c) {
                compare_run<OP>(out + po, so, a + pa, sa, b + pb, sb, c);
            });
        });
    });
}

template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s) {
    const int last = s.ndim - 1;
    const int64_t so = s.stride[0][last], sa = s.stride[1][last], sb = s.stride[2][last];
    parallel_range(s.numel(), [&](int64_t lo, int64_t hi) {
        for_runs(s, lo, hi, [=](int64_t po, int64_t pa, int64_t pb, int64_t c) {
            where_run(out + po, cond + po, so, a + pa, sa, b + pb, sb, c);
        });
    });
}

#define DYAD_INSTANTIATE_SELECT(T)                                                              \
    template void compare_fwd<T>(CompareOp, uint8_t*, const T*, const T*, const StridedShape&); \
    template void where_fwd<T>(T*, const uint8_t*, const T*, const T*, const StridedShape&);
DYAD_INSTANTIATE_SELECT(float)
DYAD_INSTANTIATE_SELECT(double)
DYAD_INSTANTIATE_SELECT(int32_t)
DYAD_INSTANTIATE_SELECT(int64_t)
DYAD_INSTANTIATE_SELECT(uint8_t)
DYAD_INSTANTIATE_SELECT(bfloat16)
#undef DYAD_INSTANTIATE_SELECT

template <typename T>
void fill(T* out, T value, int64_t n) {
    parallel_range(n, [=](int64_t lo, int64_t hi) { fill_run(out + lo, value, hi - lo); });
}

template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s) {
    const int last = s.ndim - 1;
    const int64_t so = s.stride[0][last], si = s.stride[1][last];
    parallel_range(s.numel(), [&](int64_t lo, int64_t hi) {
        if (so == 1 && si == 1) {
            for_runs(s, lo, hi, [=](int64_t o, int64_t i, int64_t, int64_t c) { copy_run(out + o, in + i, c); });
        } else {
            for_runs(s, lo, hi,
                     [=](int64_t o, int64_t i, int64_t, int64_t c) { copy_run_strided(out + o, so, in + i, si, c); });
        }
    });
}

template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void fill<int32_t>(int32_t*, int32_t, int64_t);
template void fill<int64_t>(int64_t*, int64_t, int64_t);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t);
template void fill<bfloat16>(bfloat16*, bfloat16, int64_t);

#define DYAD_INSTANTIATE_COPY_FROM(TI)                                         \
    template void copy<float, TI>(float*, const TI*, const StridedShape&);     \
    template void copy<double, TI>(double*, const TI*, const StridedShape&);   \
    template void copy<int32_t, TI>(int32_t*, const TI*, const StridedShape&); \
    template void copy<int64_t, TI>(int64_t*, const TI*, const StridedShape&); \
    template void copy<uint8_t, TI>(uint8_t*, const TI*, const StridedShape&); \
    template void copy<bfloat16, TI>(bfloat16*, const TI*, const StridedShape&);
DYAD_INSTANTIATE_COPY_FROM(float)
DYAD_INSTANTIATE_COPY_FROM(double)
DYAD_INSTANTIATE_COPY_FROM(int32_t)
DYAD_INSTANTIATE_COPY_FROM(int64_t)
DYAD_INSTANTIATE_COPY_FROM(uint8_t)
DYAD_INSTANTIATE_COPY_FROM(bfloat16)
#undef DYAD_INSTANTIATE_COPY_FROM

}  // namespace dyad::omp
