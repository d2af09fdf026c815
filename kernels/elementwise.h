// Elementwise kernels: binary arithmetic with broadcasting, unary math, comparisons, where, fill and strided
// copy/convert. Layouts come in a StridedShape (operand 0 = out). Output and inputs may alias only when
// they are the same elements with the same strides (in-place). *_bwd kernels ACCUMULATE into dx (dx += ...).
#pragma once
#include <cstdint>

#include "dyad/bfloat16.h"
#include "shapes.h"

namespace dyad {

enum class BinaryOp { add, sub, mul, div, pow };

// p0, p1 are the scalar parameters; unused ones are ignored.
enum class UnaryOp {
    neg,          // -x
    exp,          // e^x
    log,          // ln x
    sqrt,         // sqrt x
    add_scalar,   // x + p0
    mul_scalar,   // x * p0
    rsub_scalar,  // p0 - x
    div_scalar,   // x / p0
    rdiv_scalar,  // p0 / x
    pow_scalar,   // x ^ p0
    clamp,        // min(max(x, p0), p1)
    abs,          // |x|; derivative sign(x): 1, -1, or 0 at 0 and at NaN (PyTorch's sign)
    sigmoid,      // 1 / (1 + e^-x), as e^x / (1 + e^x) for x < 0 (no overflow); derivative y * (1 - y)
    tanh,         // tanh x; derivative 1 - y * y
};

// Comparisons (IEEE: every one is false when an operand is NaN, except ne, which is true).
enum class CompareOp { eq, ne, lt, le, gt, ge };

namespace naive {
// out = a (op) b over s (out: stride[0], a: stride[1], b: stride[2]).
template <typename T>
void binary_fwd(BinaryOp op, T* out, const T* a, const T* b, const StridedShape& s);
// out = f(x) over s (out: stride[0], x: stride[1]).
template <typename T>
void unary_fwd(UnaryOp op, T* out, const T* x, const StridedShape& s, T p0, T p1);
// dx += dy * f'(x), contiguous, n elements. y = f(x) is passed for ops whose derivative uses it
// (exp, sqrt, sigmoid, tanh); it may be null for the others. clamp passes where p0 <= x <= p1.
template <typename T>
void unary_bwd(UnaryOp op, T* dx, const T* dy, const T* x, const T* y, int64_t n, T p0, T p1);
// out = 1 where (a op b) holds, else 0, over s (out: stride[0], a: stride[1], b: stride[2]). T: any of
// float, double, int32_t, int64_t, uint8_t.
template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s);
// out = cond ? a : b over s (out: stride[0], a: stride[1], b: stride[2]); cond (nonzero = true) is laid out
// like out: it is read at operand 0's offsets. T: any of the five element types.
template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s);
// out[i] = value, contiguous.
template <typename T>
void fill(T* out, T value, int64_t n);
// out = static_cast<TO>(in) over s (out: stride[0], in: stride[1]); any of float, double, int32_t,
// int64_t, uint8_t, bfloat16. Float to integer conversion truncates toward zero (values must fit); a
// narrowing integer conversion keeps the low bits (two's complement), as static_cast does; to bfloat16
// rounds to nearest even through float, from bfloat16 widens to float exactly (dyad/bfloat16.h). fill
// takes the same types.
template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s);
// bfloat16 overloads (x, y and their gradients bfloat16; scalars, statistics and parameters float): the
// operands widened to float, the float kernel above run, each result rounded once (an accumulated output
// is widened, accumulated in float and rounded once). The reference for the GPU's bfloat16 kernels.
void binary_fwd(BinaryOp op, bfloat16* out, const bfloat16* a, const bfloat16* b, const StridedShape& s);
void unary_fwd(UnaryOp op, bfloat16* out, const bfloat16* x, const StridedShape& s, float p0, float p1);
void unary_bwd(UnaryOp op, bfloat16* dx, const bfloat16* dy, const bfloat16* x, const bfloat16* y, int64_t n, float p0,
               float p1);
}  // namespace naive

namespace omp {
// Same contracts as the naive twins, float only (compare, where, fill, copy: every element type). Results
// equal naive bit for bit: each element is computed by the same expression.
void binary_fwd(BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s);
void unary_fwd(UnaryOp op, float* out, const float* x, const StridedShape& s, float p0, float p1);
void unary_bwd(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1);
template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s);
template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s);
template <typename T>
void fill(T* out, T value, int64_t n);
template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s);
// bfloat16 overloads: as naive's (widen, run the float kernel above, round once), on omp's float kernels.
void binary_fwd(BinaryOp op, bfloat16* out, const bfloat16* a, const bfloat16* b, const StridedShape& s);
void unary_fwd(UnaryOp op, bfloat16* out, const bfloat16* x, const StridedShape& s, float p0, float p1);
void unary_bwd(UnaryOp op, bfloat16* dx, const bfloat16* dy, const bfloat16* x, const bfloat16* y, int64_t n, float p0,
               float p1);
}  // namespace omp

namespace cuda {
// Same contracts on the current dyad stream, device pointers; results equal naive bit for bit (exp, log,
// pow, sigmoid and tanh: within a few ulp, CUDA's libm). The common contiguous case uses 16-byte vector
// loads when every pointer is 16-byte aligned.
void binary_fwd(BinaryOp op, float* out, const float* a, const float* b, const StridedShape& s);
void unary_fwd(UnaryOp op, float* out, const float* x, const StridedShape& s, float p0, float p1);
void unary_bwd(UnaryOp op, float* dx, const float* dy, const float* x, const float* y, int64_t n, float p0, float p1);
// bfloat16 overloads: bfloat16 loads and stores, float arithmetic, each result rounded once.
void binary_fwd(BinaryOp op, bfloat16* out, const bfloat16* a, const bfloat16* b, const StridedShape& s);
void unary_fwd(UnaryOp op, bfloat16* out, const bfloat16* x, const StridedShape& s, float p0, float p1);
void unary_bwd(UnaryOp op, bfloat16* dx, const bfloat16* dy, const bfloat16* x, const bfloat16* y, int64_t n, float p0,
               float p1);
// compare, where: every element type.
template <typename T>
void compare_fwd(CompareOp op, uint8_t* out, const T* a, const T* b, const StridedShape& s);
template <typename T>
void where_fwd(T* out, const uint8_t* cond, const T* a, const T* b, const StridedShape& s);
// fill: float, double, int32_t, int64_t, uint8_t, bfloat16. copy: every pair of those.
template <typename T>
void fill(T* out, T value, int64_t n);
template <typename TO, typename TI>
void copy(TO* out, const TI* in, const StridedShape& s);
// p[i] += v for i < n (integer counters on the GPU, such as BatchNorm's num_batches_tracked).
void add_i32(int32_t* p, int32_t v, int64_t n);
}  // namespace cuda

}  // namespace dyad
