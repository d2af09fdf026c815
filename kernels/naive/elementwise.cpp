// Elementwise kernels, naive: one loop over the flat index, offsets decoded per element. The spec.
#include "../elementwise.h"

#include <cmath>

namespace dyad::naive {

template <typename T>
static T binary_op(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::add:
            return a + b;
        case BinaryOp::sub:
            return a - b;
        case BinaryOp::mul:
            return a * b;
        case BinaryOp::div:
            return a / b;
        case BinaryOp::pow:
            return std::pow(a, b);
    }
    return T(0);
}

template <typename T>
static T unary_op(UnaryOp op, T x, T p0, T p1) {
    switch (op) {
        case UnaryOp::neg:
            return -x;
        case UnaryOp::exp:
            return std::exp(x);
        case UnaryOp::log:
            return std::log(x);
        case UnaryOp::sqrt:
            return std::sqrt(x);
        case UnaryOp::add_scalar:
            return x + p0;
        case UnaryOp::mul_scalar:
            return x * p0;
        case UnaryOp::rsub_scalar:
            return p0 - x;
        case UnaryOp::div_scalar:
            return x / p0;
        case UnaryOp::rdiv_scalar:
            return p0 / x;
        case UnaryOp::pow_scalar:
            return std::pow(x, p0);
        case UnaryOp::clamp:
            return x < p0 ? p0 : (x > p1 ? p1 : x);  // NaN passes through
        case UnaryOp::abs:
            return std::abs(x);
        case UnaryOp::sigmoid: {
            if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
            const T e = std::exp(x);  // x < 0 (or NaN): e^x cannot overflow
            return e / (T(1) + e);
        }
        case UnaryOp::tanh:
            return std::tanh(x);
    }
    return T(0);
}

// f'(x), given x and y = f(x) (y may be null for ops that do not use it).
template <typename T>
static T unary_deriv(UnaryOp op, T x, const T* y, T p0, T p1) {
    switch (op) {
        case UnaryOp::neg:
            return T(-1);
        case UnaryOp::exp:
            return *y;
        case UnaryOp::log:
            return T(1) / x;
        case UnaryOp::sqrt:
            return T(0.5) / *y;
        case UnaryOp::add_scalar:
            return T(1);
        case UnaryOp::mul_scalar:
            return p0;
        case UnaryOp::rsub_scalar:
            return T(-1);
        case UnaryOp::div_scalar:
            return T(1) / p0;
        case UnaryOp::rdiv_scalar:
            return -p0 / (x * x);
        case UnaryOp::pow_scalar:
            return p0 * std::pow(x, p0 - T(1));
        case UnaryOp::clamp:
            return (x >= p0 && x <= p1) ? T(1) : T(0);
        case UnaryOp::abs:
            return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
        case UnaryOp::sigmoid:
            return *y * (T(1) - *y);
        case UnaryOp::tanh:
            return T(1) - *y * *y;
    }
    return T(0);
}

template <typename T>
static bool compare_op(CompareOp op, T a, T b) {
    switch (op) {
        case CompareOp::eq:
            return a == b;
        case CompareOp::ne:
            return a != b;
        case CompareOp::lt:
            return a < b;
        case CompareOp::le:
            return a <= b;
        case CompareOp::gt:
            return a > b;
        case CompareOp::ge:
            return a >= b;
    }
    return false;
}

template <typename T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedShape& s) {
    for (int64_t i = 0, n = s.numel(); i < n; i++)
        out[s.offset(0, i)] = binary_op(op, a[s.offset(1, i)], b[s.offset(2, i)]);
}

template <typename T>
void unary_fwd(UnaryOp op, T* out, const T* x, const StridedShape& s, T p0, T p1) {
    for (int64_t i = 0, n = s.numel(); i < n; i++) out[s.offset(0, i)] = unary_op(op, x[s.offset(1, i)], p0, p1);
}

template <typename T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T p0, T p1) {
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * unary_deriv(op, x[i], y ? y + i : nullptr, p0, p1);
}

template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s) {
    for (int64_t i = 0, n = s.numel(); i < n; i++)
        out[s.offset(0, i)] = compare_op(op, a[s.offset(1, i)], b[s.offset(2, i)]) ? 1 : 0;
}

template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s) {
    for (int64_t i = 0, n = s.numel(); i < n; i++) {
        const int64_t o = s.offset(0, i);
        out[o] = cond[o] ? a[s.offset(1, i)] : b[s.offset(2, i)];
    }
}

template <typename T>
void fill(T* out, T value, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = value;
}

template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s) {
    for (int64_t i = 0, n = s.numel(); i < n; i++) out[s.offset(0, i)] = static_cast<TO>(in[s.offset(1, i)]);
}

#define DYAD_INSTANTIATE_FLOAT(T)                                                       \
    template void binary_fwd<T>(BinaryOp, T*, const T*, const T*, const StridedShape&); \
    template void unary_fwd<T>(UnaryOp, T*, const T*, const StridedShape&, T, T);       \
    template void unary_bwd<T>(UnaryOp, T*, const T*, const T*, const T*, int64_t, T, T);
DYAD_INSTANTIATE_FLOAT(float)
DYAD_INSTANTIATE_FLOAT(double)

#define DYAD_INSTANTIATE_SELECT(T)                                                              \
    template void compare_fwd<T>(CompareOp, uint8_t*, const T*, const T*, const StridedShape&); \
    template void where_fwd<T>(T*, const uint8_t*, const T*, const T*, const StridedShape&);
DYAD_INSTANTIATE_SELECT(float)
DYAD_INSTANTIATE_SELECT(double)
DYAD_INSTANTIATE_SELECT(int32_t)
DYAD_INSTANTIATE_SELECT(int64_t)
DYAD_INSTANTIATE_SELECT(uint8_t)
DYAD_INSTANTIATE_SELECT(bfloat16)

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

}  // namespace dyad::naive
