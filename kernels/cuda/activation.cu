// Activation kernels, CUDA (contracts in kernels/activation.h): grid-stride loops over the flat index
// that move 16 bytes per load and store (float4) when every pointer is 16-byte aligned, with a scalar
// loop for the last n % 4 elements, and a plain scalar loop otherwise. The element expressions are
// naive's: relu_fwd selects (x < 0 ? 0 : x, so NaN and -0 pass through untouched) and relu_bwd adds dy
// only where x > 0, leaving every other dx element bit for bit as it was. bfloat16 runs the scalar
// kernels (templates on the element type): each element is widened to float, computed with the same
// expression and rounded once on store, so a value passed through unchanged is stored back as it was
// (a signalling NaN comes back quiet).
#include <cstdint>
#include <type_traits>

#include "../activation.h"
#include "context.h"

namespace dyad::cuda {

namespace {

__device__ __forceinline__ float relu(float x) { return x < 0.0f ? 0.0f : x; }
__device__ __forceinline__ float relu_grad(float dx, float dy, float x) { return x > 0.0f ? __fadd_rn(dx, dy) : dx; }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

__global__ void relu_fwd_vec4_kernel(float* y, const float* x, int64_t n) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += step) {
        const float4 v = reinterpret_cast<const float4*>(x)[i];
        reinterpret_cast<float4*>(y)[i] = make_float4(relu(v.x), relu(v.y), relu(v.z), relu(v.w));
    }
    for (int64_t i = n4 * 4 + tid; i < n; i += step) y[i] = relu(x[i]);
}

template <typename T>
__global__ void relu_fwd_kernel(T* y, const T* x, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        y[i] = T(relu(float(x[i])));
}

__global__ void relu_bwd_vec4_kernel(float* dx, const float* dy, const float* x, int64_t n) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, step = int64_t(gridDim.x) * blockDim.x;
    const int64_t n4 = n / 4;
    for (int64_t i = tid; i < n4; i += step) {
        const float4 g = reinterpret_cast<const float4*>(dx)[i];
        const float4 d = reinterpret_cast<const float4*>(dy)[i];
        const float4 v = reinterpret_cast<const float4*>(x)[i];
        reinterpret_cast<float4*>(dx)[i] = make_float4(relu_grad(g.x, d.x, v.x), relu_grad(g.y, d.y, v.y),
                                                       relu_grad(g.z, d.z, v.z), relu_grad(g.w, d.w, v.w));
    }
    for (int64_t i = n4 * 4 + tid; i < n; i += step) dx[i] = relu_grad(dx[i], dy[i], x[i]);
}

template <typename T>
__global__ void relu_bwd_kernel(T* dx, const T* dy, const T* x, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        dx[i] = T(relu_grad(float(dx[i]), float(dy[i]), float(x[i])));
}

// float: the float4 kernel when every pointer is aligned; bfloat16 (and unaligned float): the scalar one.
template <typename T>
void relu_fwd_impl(T* y, const T* x, int64_t n) {
    if (n == 0) return;
    if constexpr (std::is_same_v<T, float>) {
        if (aligned16(y) && aligned16(x)) {
            relu_fwd_vec4_kernel<<<grid_for((n + 3) / 4), kBlock, 0, stream()>>>(y, x, n);
            DYAD_CUDA_CHECK_LAUNCH();
            return;
        }
    }
    relu_fwd_kernel<<<grid_for(n), kBlock, 0, stream()>>>(y, x, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

template <typename T>
void relu_bwd_impl(T* dx, const T* dy, const T* x, int64_t n) {
    if (n == 0) return;
    if constexpr (std::is_same_v<T, float>) {
        if (aligned16(dx) && aligned16(dy) && aligned16(x)) {
            relu_bwd_vec4_kernel<<<grid_for((n + 3) / 4), kBlock, 0, stream()>>>(dx, dy, x, n);
            DYAD_CUDA_CHECK_LAUNCH();
            return;
        }
    }
    relu_bwd_kernel<<<grid_for(n), kBlock, 0, stream()>>>(dx, dy, x, n);
    DYAD_CUDA_CHECK_LAUNCH();
}

}  // namespace

void relu_fwd(float* y, const float* x, int64_t n) { relu_fwd_impl(y, x, n); }
void relu_bwd(float* dx, const float* dy, const float* x, int64_t n) { relu_bwd_impl(dx, dy, x, n); }
void relu_fwd(bfloat16* y, const bfloat16* x, int64_t n) { relu_fwd_impl(y, x, n); }
void relu_bwd(bfloat16* dx, const bfloat16* dy, const bfloat16* x, int64_t n) { relu_bwd_impl(dx, dy, x, n); }

}  // namespace dyad::cuda
