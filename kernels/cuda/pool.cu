// Placeholder definitions: replaced by the real kernels.
#include "../pool.h"
#include "check.h"
namespace dyad::cuda {
void max_pool2d_fwd(const Pool2dShape& s, float* y, int32_t* idx, const float* x) { throw CudaError("max_pool2d_fwd: not written yet"); }
void max_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy, const int32_t* idx) { throw CudaError("max_pool2d_bwd: not written yet"); }
void avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) { throw CudaError("avg_pool2d_fwd: not written yet"); }
void avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) { throw CudaError("avg_pool2d_bwd: not written yet"); }
void adaptive_avg_pool2d_fwd(const Pool2dShape& s, float* y, const float* x) { throw CudaError("adaptive_avg_pool2d_fwd: not written yet"); }
void adaptive_avg_pool2d_bwd(const Pool2dShape& s, float* dx, const float* dy) { throw CudaError("adaptive_avg_pool2d_bwd: not written yet"); }
}  // namespace dyad::cuda
