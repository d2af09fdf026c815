// Helpers shared by the op frontends: argument checks, strided iteration spaces, gradient plumbing.
#pragma once
#include <initializer_list>
#include <vector>

#include "dyad/tensor.h"
#include "kernels/shapes.h"

namespace dyad::detail {

// The iteration space over `shape` for operands with the given strides (output first), with size-1 dims
// dropped and dims merged where every operand is contiguous across them. Throws when more than kMaxDims
// dims remain.
StridedShape make_strided(const Shape& shape, std::initializer_list<std::vector<int64_t>> strides, const char* op);
// Strides that read t as if broadcast to `shape` (0 on broadcast dims); shapes must be compatible.
std::vector<int64_t> broadcast_strides(const Tensor& t, const Shape& shape);

void check_defined(const char* op, const Tensor& t, const char* arg);
void check_floating(const char* op, const Tensor& t);
void check_same(const char* op, const Tensor& a, const Tensor& b);  // dtype and device

// An uninitialised tensor of `shape` laid out in `format` (channels_last: a 4-D shape).
Tensor empty_in(const Shape& shape, DType dtype, Device device, MemoryFormat format);
// An op's 4-D result y in the memory format of its input x: y itself, or (x channels_last, y computed by
// NCHW kernels) a recorded channels_last copy of y. The explicit conversion of ops that have no NHWC kernel.
Tensor in_format_of(const Tensor& y, const Tensor& x);

// g summed over the dims where `shape` broadcast to g's shape; the result has `shape`. No autograd.
Tensor sum_to(const Tensor& g, const Shape& shape);
// dst += src (src broadcast to dst's shape, same dtype and device). dst may be any strided view.
// No autograd.
void accumulate(const Tensor& dst, const Tensor& src);

}  // namespace dyad::detail
