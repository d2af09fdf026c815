// Placeholder definitions: replaced by the real kernels (fill is real: Tensor::full uses it).
#include "../elementwise.h"
#include "context.h"

namespace dyad::cuda {

template <typename T>
__global__ void fill_kernel(T* out, T value, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = value;
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
template void fill<uint8_t>(uint8_t*, uint8_t, int64_t);

void binary_fwd(BinaryOp, float*, const float*, const float*, const StridedShape&) { throw CudaError("binary_fwd: not written yet"); }
void unary_fwd(UnaryOp, float*, const float*, const StridedShape&, float, float) { throw CudaError("unary_fwd: not written yet"); }
void unary_bwd(UnaryOp, float*, const float*, const float*, const float*, int64_t, float, float) { throw CudaError("unary_bwd: not written yet"); }
template <typename TO, typename TI>
void copy(TO*, const TI*, const StridedShape&) { throw CudaError("copy: not written yet"); }
#define DYAD_COPY_PAIR(TO, TI) template void copy<TO, TI>(TO*, const TI*, const StridedShape&);
#define DYAD_COPY_FROM(TO) DYAD_COPY_PAIR(TO, float) DYAD_COPY_PAIR(TO, double) DYAD_COPY_PAIR(TO, int32_t) DYAD_COPY_PAIR(TO, uint8_t)
DYAD_COPY_FROM(float)
DYAD_COPY_FROM(double)
DYAD_COPY_FROM(int32_t)
DYAD_COPY_FROM(uint8_t)
void add_i32(int32_t*, int32_t, int64_t) { throw CudaError("add_i32: not written yet"); }

}  // namespace dyad::cuda
