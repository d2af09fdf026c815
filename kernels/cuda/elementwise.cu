// Elementwise kernels, CUDA (contracts in kernels/elementwise.h). Two paths per kernel, both grid-stride
// loops over the flat index: when every operand is contiguous with unit stride, a flat loop that moves
// 16 bytes per load and store (float4, or uint4 for same-type copies) when every pointer is 16-byte
// aligned, with a scalar loop for the last few elements (and a plain scalar loop when a pointer is not
// aligned); otherwise a general loop that decodes each flat index into coordinates once and takes every
// operand's offset from it (StridedShape::offset's arithmetic, in 32-bit when the space allows). Each
// element is computed with naive's expression: add, sub, mul, div, sqrt are IEEE round-to-nearest, so
// the results equal naive bit for bit; exp, log and pow use CUDA's expf, logf and powf (within a few
// ulps of glibc's). Where naive multiplies and then adds, the kernels use __fmul_rn and __fadd_rn so
// nvcc cannot contract the two into an FMA. binary_fwd, unary_fwd and unary_bwd are templates on the
// element type: bfloat16 operands are widened to float as they are loaded, computed with the same float
// expressions, and each result is rounded once as it is stored; bfloat16 takes the scalar contiguous loop
// (no 16-byte path) and the same general path.
#include <cstdint>
#include <type_traits>

#include "../elementwise.h"
#include "context.h"

namespace dyad::cuda {

namespace {

// ---------------------------------------------------------------------------- element expressions
template <BinaryOp OP>
struct Binary {
    __device__ __forceinline__ float operator()(float a, float b, float, float) const {
        if constexpr (OP == BinaryOp::add) return __fadd_rn(a, b);
        if constexpr (OP == BinaryOp::sub) return __fsub_rn(a, b);
        if constexpr (OP == BinaryOp::mul) return __fmul_rn(a, b);
        if constexpr (OP == BinaryOp::div) return a / b;  // IEEE division (no fast-math)
        if constexpr (OP == BinaryOp::pow) return powf(a, b);
    }
};

template <UnaryOp OP>
struct Unary {
    float p0, p1;
    __device__ __forceinline__ float operator()(float x, float, float, float) const {
        if constexpr (OP == UnaryOp::neg) return -x;
        if constexpr (OP == UnaryOp::exp) return expf(x);
        if constexpr (OP == UnaryOp::log) return logf(x);
        if constexpr (OP == UnaryOp::sqrt) return sqrtf(x);  // IEEE square root (no fast-math)
        if constexpr (OP == UnaryOp::add_scalar) return __fadd_rn(x, p0);
        if constexpr (OP == UnaryOp::mul_scalar) return __fmul_rn(x, p0);
        if constexpr (OP == UnaryOp::rsub_scalar) return __fsub_rn(p0, x);
        if constexpr (OP == UnaryOp::div_scalar) return x / p0;
        if constexpr (OP == UnaryOp::rdiv_scalar) return p0 / x;
        if constexpr (OP == UnaryOp::pow_scalar) return powf(x, p0);
        if constexpr (OP == UnaryOp::clamp) return x < p0 ? p0 : (x > p1 ? p1 : x);  // NaN passes through
        if constexpr (OP == UnaryOp::abs) return fabsf(x);
        if constexpr (OP == UnaryOp::sigmoid) {
            if (x >= 0.0f) return 1.0f / __fadd_rn(1.0f, expf(-x));
            const float e = expf(x);
            return e / __fadd_rn(1.0f, e);
        }
        if constexpr (OP == UnaryOp::tanh) return tanhf(x);
    }
};

// exp, sqrt, sigmoid and tanh take their derivative from y = f(x); the other ops never read y (it may be
// null).
template <UnaryOp OP>
constexpr bool kReadsY = OP == UnaryOp::exp || OP == UnaryOp::sqrt || OP == UnaryOp::sigmoid || OP == UnaryOp::tanh;

// dx + dy * f'(x), naive's unary_deriv with the multiply and the add kept apart.
template <UnaryOp OP>
struct UnaryBwd {
    float p0, p1;
    __device__ __forceinline__ float deriv(float x, float y) const {
        if constexpr (OP == UnaryOp::neg) return -1.0f;
        if constexpr (OP == UnaryOp::exp) return y;
        if constexpr (OP == UnaryOp::log) return 1.0f / x;
        if constexpr (OP == UnaryOp::sqrt) return 0.5f / y;
        if constexpr (OP == UnaryOp::add_scalar) return 1.0f;
        if constexpr (OP == UnaryOp::mul_scalar) return p0;
        if constexpr (OP == UnaryOp::rsub_scalar) return -1.0f;
        if constexpr (OP == UnaryOp::div_scalar) return 1.0f / p0;
        if constexpr (OP == UnaryOp::rdiv_scalar) return -p0 / __fmul_rn(x, x);
        if constexpr (OP == UnaryOp::pow_scalar) return __fmul_rn(p0, powf(x, __fsub_rn(p0, 1.0f)));
        if constexpr (OP == UnaryOp::clamp) return (x >= p0 && x <= p1) ? 1.0f : 0.0f;
        if constexpr (OP == UnaryOp::abs) return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
        if constexpr (OP == UnaryOp::sigmoid) return __fmul_rn(y, __fsub_rn(1.0f, y));
        if constexpr (OP == UnaryOp::tanh) return __fsub_rn(1.0f, __fmul_rn(y, y));
    }
    __device__ __forceinline__ float operator()(float dx, float dy, float x, float y) const {
        return __fadd_rn(dx, __fmul_rn(dy, deriv(x, y)));
    }
};

// ---------------------------------------------------------------------------- contiguous path
// out[i] = f(in[0][i], ..., in[NIN - 1][i]) for i < n; the inputs past NIN read as 0. T is the element type
// (float or bfloat16); f always works in float.
template <typename T>
struct Inputs {
    const T* p[4];
};

__device__ __forceinline__ float lane(const float4& v, int j) {
    return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}

template <int NIN, typename F>
__global__ void map_vec4_kernel(float* out, Inputs<float> in, int64_t n, F f) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += step) {
        float4 v[4] = {};
#pragma unroll
        for (int k = 0; k < NIN; k++) v[k] = reinterpret_cast<const float4*>(in.p[k])[i];
        float r[4];
#pragma unroll
        for (int j = 0; j < 4; j++) r[j] = f(lane(v[0], j), lane(v[1], j), lane(v[2], j), lane(v[3], j));
        reinterpret_cast<float4*>(out)[i] = make_float4(r[0], r[1], r[2], r[3]);
    }
    for (int64_t i = n4 * 4 + tid; i < n; i += step) {  // the last n % 4 elements
        float v[4] = {};
#pragma unroll
        for (int k = 0; k < NIN; k++) v[k] = in.p[k][i];
        out[i] = f(v[0], v[1], v[2], v[3]);
    }
}

template <int NIN, typename T, typename F>
__global__ void map_scalar_kernel(T* out, Inputs<T> in, int64_t n, F f) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        float v[4] = {};
#pragma unroll
        for (int k = 0; k < NIN; k++) v[k] = float(in.p[k][i]);
        out[i] = T(f(v[0], v[1], v[2], v[3]));
    }
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// float: the float4 kernel when every pointer is aligned; bfloat16 (and unaligned float): the scalar one.
template <int NIN, typename T, typename F>
void map_contiguous(T* out, Inputs<T> in, int64_t n, F f) {
    if constexpr (std::is_same_v<T, float>) {
        bool vec = aligned16(out);
        for (int k = 0; k < NIN; k++) vec = vec && aligned16(in.p[k]);
        if (vec) {
            map_vec4_kernel<NIN><<<grid_for((n + 3) / 4), kBlock, 0, stream()>>>(out, in, n, f);
            DYAD_CUDA_CHECK_LAUNCH();
            return;
        }
    }
    map_scalar_kernel<NIN><<<grid_for(n), kBlock, 0, stream()>>>(out, in, n, f);
    DYAD_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------- general (strided) path
// Offsets of flat index i for the first NOP operands: i is decoded into coordinates once (innermost dim
// first, as StridedShape::offset does) and each coordinate is multiplied by every operand's stride. I is
// uint32_t when the whole space has fewer than 2^31 elements (cheaper division), else int64_t.
template <int NOP, typename I>
__device__ __forceinline__ void offsets(const StridedShape& s, I i, int64_t (&off)[3]) {
#pragma unroll
    for (int o = 0; o < 3; o++) off[o] = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; d--) {
        if (d < s.ndim) {
            const I size = I(s.size[d]);
            const I q = i / size;
            const int64_t c = int64_t(i - q * size);
#pragma unroll
            for (int o = 0; o < NOP; o++) off[o] += c * s.stride[o][d];
            i = q;
        }
    }
}

template <typename I, typename T, typename F>
__global__ void binary_strided_kernel(T* out, const T* a, const T* b, StridedShape s, int64_t n, F f) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        int64_t off[3];
        offsets<3>(s, I(i), off);
        out[off[0]] = T(f(float(a[off[1]]), float(b[off[2]]), 0.0f, 0.0f));
    }
}

template <typename I, typename T, typename F>
__global__ void unary_strided_kernel(T* out, const T* x, StridedShape s, int64_t n, F f) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        int64_t off[3];
        offsets<2>(s, I(i), off);
        out[off[0]] = T(f(float(x[off[1]]), 0.0f, 0.0f, 0.0f));
    }
}

inline bool small_space(int64_t n) { return n <= int64_t(INT32_MAX); }

template <typename T, typename F>
void binary_impl(T* out, const T* a, const T* b, const StridedShape& s, F f) {
    const int64_t n = s.numel();
    if (n == 0) return;
    if (s.contiguous(0) && s.contiguous(1) && s.contiguous(2)) return map_contiguous<2>(out, Inputs<T>{{a, b}}, n, f);
    if (small_space(n))
        binary_strided_kernel<uint32_t><<<grid_for(n), kBlock, 0, stream()>>>(out, a, b, s, n, f);
    else
        binary_strided_kernel<int64_t><<<grid_for(n), kBlock, 0, stream()>>>(out, a, b, s, n, f);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T, typename F>
void unary_impl(T* out, const T* x, const StridedShape& s, F f) {
    const int64_t n = s.numel();
    if (n == 0) return;
    if (s.contiguous(0) && s.contiguous(1)) return map_contiguous<1>(out, Inputs<T>{{x}}, n, f);
    if (small_space(n))
        unary_strided_kernel<uint32_t><<<grid_for(n), kBlock, 0, stream()>>>(out, x, s, n, f);
    else
        unary_strided_kernel<int64_t><<<grid_for(n), kBlock, 0, stream()>>>(out, x, s, n, f);
    DYAD_CUDA_CHECK_LAUNCH();
}

// ---------------------------------------------------------------------------- op dispatch
template <auto V>
using Op = std::integral_constant<decltype(V), V>;

template <typename G>
void with_binary_op(BinaryOp op, const G& g) {
    switch (op) {
        case BinaryOp::add:
            return g(Op<BinaryOp::add>{});
        case BinaryOp::sub:
            return g(Op<BinaryOp::sub>{});
        case BinaryOp::mul:
            return g(Op<BinaryOp::mul>{});
        case BinaryOp::div:
            return g(Op<BinaryOp::div>{});
        case BinaryOp::pow:
            return g(Op<BinaryOp::pow>{});
    }
    throw CudaError("binary_fwd: unknown op");
}

template <typename G>
void with_unary_op(UnaryOp op, const G& g) {
    switch (op) {
        case UnaryOp::neg:
            return g(Op<UnaryOp::neg>{});
        case UnaryOp::exp:
            return g(Op<UnaryOp::exp>{});
        case UnaryOp::log:
            return g(Op<UnaryOp::log>{});
        case UnaryOp::sqrt:
            return g(Op<UnaryOp::sqrt>{});
        case UnaryOp::add_scalar:
            return g(Op<UnaryOp::add_scalar>{});
        case UnaryOp::mul_scalar:
            return g(Op<UnaryOp::mul_scalar>{});
        case UnaryOp::rsub_scalar:
            return g(Op<UnaryOp::rsub_scalar>{});
        case UnaryOp::div_scalar:
            return g(Op<UnaryOp::div_scalar>{});
        case UnaryOp::rdiv_scalar:
            return g(Op<UnaryOp::rdiv_scalar>{});
        case UnaryOp::pow_scalar:
            return g(Op<UnaryOp::pow_scalar>{});
        case UnaryOp::clamp:
            return g(Op<UnaryOp::clamp>{});
        case UnaryOp::abs:
            return g(Op<UnaryOp::abs>{});
        case UnaryOp::sigmoid:
            return g(Op<UnaryOp::sigmoid>{});
        case UnaryOp::tanh:
            return g(Op<UnaryOp::tanh>{});
    }
    throw CudaError("unary op: unknown op");
}

// ---------------------------------------------------------------------------- entry points, any T
template <typename T>
void binary_any(BinaryOp op, T* out, const T* a, const T* b, const StridedShape& s) {
    with_binary_op(op, [&](auto o) { binary_impl(out, a, b, s, Binary<decltype(o)::value>{}); });
}

template <typename T>
void unary_any(UnaryOp op, T* out, const T* x, const StridedShape& s, float p0, float p1) {
    with_unary_op(op, [&](auto o) { unary_impl(out, x, s, Unary<decltype(o)::value>{p0, p1}); });
}

template <typename T>
void unary_bwd_any(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, float p0, float p1) {
    if (n == 0) return;
    with_unary_op(op, [&](auto o) {
        constexpr UnaryOp OP = decltype(o)::value;
        if constexpr (kReadsY<OP>)
            map_contiguous<4>(dx, Inputs<T>{{dx, dy, x, y}}, n, UnaryBwd<OP>{p0, p1});
        else
            map_contiguous<3>(dx, Inputs<T>{{dx, dy, x}}, n, UnaryBwd<OP>{p0, p1});
    });
}

// ---------------------------------------------------------------------------- compare, where
// One thread per element (grid-stride); offsets decoded as in the general path unless every operand is
// contiguous (then the flat index is every offset). I as in offsets().
template <CompareOp OP, typename T>
__device__ __forceinline__ bool cmp(T a, T b) {
    if constexpr (OP == CompareOp::eq) return a == b;
    if constexpr (OP == CompareOp::ne) return a != b;
    if constexpr (OP == CompareOp::lt) return a < b;
    if constexpr (OP == CompareOp::le) return a <= b;
    if constexpr (OP == CompareOp::gt) return a > b;
    if constexpr (OP == CompareOp::ge) return a >= b;
}

template <CompareOp OP, typename I, typename T>
__global__ void compare_kernel(uint8_t* out, const T* a, const T* b, StridedShape s, int64_t n, bool flat) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        int64_t off[3] = {i, i, i};
        if (!flat) offsets<3>(s, I(i), off);
        out[off[0]] = cmp<OP>(a[off[1]], b[off[2]]) ? 1 : 0;
    }
}

template <typename I, typename T>
__global__ void where_kernel(T* out, const uint8_t* cond, const T* a, const T* b, StridedShape s, int64_t n,
                             bool flat) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        int64_t off[3] = {i, i, i};
        if (!flat) offsets<3>(s, I(i), off);
        out[off[0]] = cond[off[0]] ? a[off[1]] : b[off[2]];
    }
}

template <typename G>
void with_compare_op(CompareOp op, const G& g) {
    switch (op) {
        case CompareOp::eq:
            return g(Op<CompareOp::eq>{});
        case CompareOp::ne:
            return g(Op<CompareOp::ne>{});
        case CompareOp::lt:
            return g(Op<CompareOp::lt>{});
        case CompareOp::le:
            return g(Op<CompareOp::le>{});
        case CompareOp::gt:
            return g(Op<CompareOp::gt>{});
        case CompareOp::ge:
            return g(Op<CompareOp::ge>{});
    }
    throw CudaError("compare_fwd: unknown op");
}

// ---------------------------------------------------------------------------- fill, copy, add_i32
template <typename T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = value;
}

// Same-type contiguous copy as 16-byte words (nwords of them), then the last bytes element by element.
template <typename T>
__global__ void copy_vec16_kernel(T* out, const T* in, int64_t nwords, int64_t n) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    for (int64_t i = tid; i < nwords; i += step)
        reinterpret_cast<uint4*>(out)[i] = reinterpret_cast<const uint4*>(in)[i];
    constexpr int64_t per_word = 16 / int64_t(sizeof(T));
    for (int64_t i = nwords * per_word + tid; i < n; i += step) out[i] = in[i];
}

template <typename TO, typename TI>
__global__ void copy_contiguous_kernel(TO* out, const TI* in, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = static_cast<TO>(in[i]);
}

template <typename I, typename TO, typename TI>
__global__ void copy_strided_kernel(TO* out, const TI* in, StridedShape s, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        int64_t off[3];
        offsets<2>(s, I(i), off);
        out[off[0]] = static_cast<TO>(in[off[1]]);
    }
}

__global__ void add_i32_kernel(int32_t* p, int32_t v, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        p[i] += v;
}

}  // namespace

// ---------------------------------------------------------------------------- entry points
void binary_fwd(BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s) {
    binary_any(op, out, a, b, s);
}

void unary_fwd(UnaryOp op, float* out, const float* x, const StridedShape& s, float p0, float p1) {
    unary_any(op, out, x, s, p0, p1);
}

void unary_bwd(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1) {
    unary_bwd_any(op, dx, dy, x, y, n, p0, p1);
}

void binary_fwd(BinaryOp op, bfloat16* out, const bfloat16* a, const bfloat16* b, const StridedShape& s) {
    binary_any(op, out, a, b, s);
}

void unary_fwd(UnaryOp op, bfloat16* out, const bfloat16* x, const StridedShape& s, float p0, float p1) {
    unary_any(op, out, x, s, p0, p1);
}

void unary_bwd(UnaryOp op, bfloat16* dx, const bfloat16* dy, const bfloat16* x, const bfloat16* y, int64_t n, float p0,
               float p1) {
    unary_bwd_any(op, dx, dy, x, y, n, p0, p1);
}

template <typename T>
void fill(T* out, T value, int64_t n) {
    if (n == 0) return;
    fill_kernel<<<grid_for(n), kBlock, 0, stream()>>>(out, value, n);
    DYAD_CUDA_CHECK_LAUNCH();
}
template void fill<float>(float*, float, int64_t);
template void fill<double>(double*, double, int64_t);
template void fill<int32_t>(int32_t*, int32_t, int64_t);
template void fill<int64_t>(int64_t*, int64_t, int64_t);
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t);
template void fill<bfloat16>(bfloat16*, bfloat16, int64_t);

template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    if (s.contiguous(0) && s.contiguous(1)) {
        if constexpr (std::is_same_v<TO, TI>) {
            if (aligned16(out) && aligned16(in)) {
                const int64_t nwords = n * int64_t(sizeof(TO)) / 16;
                copy_vec16_kernel<<<grid_for(nwords + 1), kBlock, 0, stream()>>>(out, in, nwords, n);
                DYAD_CUDA_CHECK_LAUNCH();
                return;
            }
        }
        copy_contiguous_kernel<<<grid_for(n), kBlock, 0, stream()>>>(out, in, n);
    } else if (small_space(n)) {
        copy_strided_kernel<uint32_t><<<grid_for(n), kBlock, 0, stream()>>>(out, in, s, n);
    } else {
        copy_strided_kernel<int64_t><<<grid_for(n), kBlock, 0, stream()>>>(out, in, s, n);
    }
    DYAD_CUDA_CHECK_LAUNCH();
}
#define DYAD_COPY_PAIR(TO, TI) template void copy<TO, TI>(TO*, const TI*, const StridedShape&);
#define DYAD_COPY_FROM(TO)      \
    DYAD_COPY_PAIR(TO, float)   \
    DYAD_COPY_PAIR(TO, double)  \
    DYAD_COPY_PAIR(TO, int32_t) \
    DYAD_COPY_PAIR(TO, int64_t) \
    DYAD_COPY_PAIR(TO, uint8_t) \
    DYAD_COPY_PAIR(TO, bfloat16)
DYAD_COPY_FROM(float)
DYAD_COPY_FROM(double)
DYAD_COPY_FROM(int32_t)
DYAD_COPY_FROM(int64_t)
DYAD_COPY_FROM(uint8_t)
DYAD_COPY_FROM(bfloat16)
#undef DYAD_COPY_FROM
#undef DYAD_COPY_PAIR

template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    const bool flat = s.contiguous(0) && s.contiguous(1) && s.contiguous(2);
    with_compare_op(op, [&](auto o) {
        constexpr CompareOp OP = decltype(o)::value;
        if (small_space(n))
            compare_kernel<OP, uint32_t><<<grid_for(n), kBlock, 0, stream()>>>(out, a, b, s, n, flat);
        else
            compare_kernel<OP, int64_t><<<grid_for(n), kBlock, 0, stream()>>>(out, a, b, s, n, flat);
        DYAD_CUDA_CHECK_LAUNCH();
    });
}

template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s) {
    const int64_t n = s.numel();
    if (n == 0) return;
    const bool flat = s.contiguous(0) && s.contiguous(1) && s.contiguous(2);
    if (small_space(n))
        where_kernel<uint32_t><<<grid_for(n), kBlock, 0, stream()>>>(out, cond, a, b, s, n, flat);
    else
        where_kernel<int64_t><<<grid_for(n), kBlock, 0, stream()>>>(out, cond, a, b, s, n, flat);
    DYAD_CUDA_CHECK_LAUNCH();
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

void add_i32(int32_t* p, int32_t v, int64_t n) {
    if (n == 0) return;
    add_i32_kernel<<<grid_for(n), kBlock, 0, stream()>>>(p, v, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace dyad::cuda
