// Placeholder definitions: replaced by the real kernels.
#include "../conv.h"
#include "check.h"
namespace dyad::cuda {
void conv2d_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) { throw CudaError("conv2d_fwd: not written yet"); }
void conv2d_bwd_data(const Conv2dShape& s, float* dx, const float* dy, const float* weight) { throw CudaError("conv2d_bwd_data: not written yet"); }
void conv2d_bwd_filter(const Conv2dShape& s, float* dweight, float* dbias, const float* dy, const float* x) { throw CudaError("conv2d_bwd_filter: not written yet"); }
void conv2d_bias_relu_fwd(const Conv2dShape& s, float* y, const float* x, const float* weight, const float* bias) { throw CudaError("conv2d_bias_relu_fwd: not written yet"); }
void im2col(const Conv2dShape& s, float* col, const float* x) { throw CudaError("im2col: not written yet"); }
void col2im(const Conv2dShape& s, float* dx, const float* col) { throw CudaError("col2im: not written yet"); }
}  // namespace dyad::cuda
