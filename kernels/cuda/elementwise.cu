// Elementwise kernels, CUDA. For now: fill (used by Tensor::full on a GPU). One thread per element,
// grid-stride loop so any n fits in one launch.
#include "../elementwise.h"
#include "check.h"  // DYAD_CUDA_CHECK_LAUNCH

namespace dyad::cuda {

__global__ void fill_f32_kernel(float* out, float value, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = value;
}

void fill_f32(float* out, float value, int64_t n) {
    if (n == 0) return;
    const int block = 256;
    const int64_t blocks = (n + block - 1) / block;
    const int grid = static_cast<int>(blocks < 65535 ? blocks : 65535);
    fill_f32_kernel<<<grid, block>>>(out, value, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace dyad::cuda
