// Functional ops. Each op checks its arguments (dyad::Error naming the op and the shapes), runs the
// kernel of the tensor's device (CPU: naive or omp, see set_cpu_kernels; CUDA) and, when grad mode is on
// and an input requires grad, records its backward on the tape. Results are new contiguous tensors.
// Floating ops take float32 or float64 (float64 runs on the naive kernels); both operands of a binary
// op must share dtype and device.
#pragma once
#include <vector>

#include "dyad/tensor.h"

namespace dyad {

// ---------------------------------------------------------------------------- elementwise
// Binary ops broadcast like NumPy: shapes are aligned from the right; each dim must be equal or 1.
// The gradient of a broadcast operand is summed over the broadcast dims.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// a ** b elementwise. Gradient w.r.t. b is a**b * log(a): defined for a > 0 only.
Tensor pow(const Tensor& a, const Tensor& b);

// Scalar variants: the scalar is converted to the tensor's dtype.
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor sub(double s, const Tensor& a);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor div(double s, const Tensor& a);
Tensor pow(const Tensor& a, double exponent);

Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);   // log of x <= 0 gives -inf/nan like std::log
Tensor sqrt(const Tensor& a);  // gradient 0.5 / sqrt(x): inf at 0
// min(max(a, lo), hi). Gradient passes where lo <= a <= hi (boundaries included), 0 outside.
Tensor clamp(const Tensor& a, double lo, double hi);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);
Tensor operator-(const Tensor& a);

// ---------------------------------------------------------------------------- activation
// relu(x) = max(x, 0). Gradient: 1 where x > 0, 0 where x <= 0 (0 at exactly 0, as in PyTorch).
// NaN inputs give NaN.
Tensor relu(const Tensor& x);

// ---------------------------------------------------------------------------- reduce
// Over all elements (result: a one-element tensor of shape ()) or over `dims` (negative dims count
// from the end; duplicates are an error; an empty list reduces nothing). keepdim keeps reduced dims with
// size 1. Reduced dims that are not adjacent are gathered by a permuted copy first.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Maximum value. Backward sends the whole gradient to the first maximum (lowest index in row-major
// order of the reduced dims) when values tie. NaN wins over numbers (the first NaN is returned).
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Index (int32) of the first maximum along `dim`; over all elements (flat row-major index) without dim.
// Not differentiable.
Tensor argmax(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);

// ---------------------------------------------------------------------------- gemm
// Matrix product. a: (M, K) or (B, M, K); b: (K, N) or (B, K, N); a 2-D operand is shared by every
// batch. Result (M, N) or (B, M, N). Transposed views (x.t(), x.transpose(-2, -1)) are used as they are,
// without a copy: the GEMM kernel reads them transposed.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---------------------------------------------------------------------------- shape
// Free-function forms of Tensor's view methods.
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);

// Shape that a and b broadcast to; throws naming `op` and both shapes when they do not.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

}  // namespace dyad
