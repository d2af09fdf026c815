// CUDA runtime skeleton (host code, compiled by the C++ compiler against the CUDA runtime headers).
#include "runtime.h"

#include <cublas_v2.h>
#include <cudnn.h>

#include "check.h"  // DYAD_CUDA_CHECK, DYAD_CUDA_WARN

namespace dyad::cuda {

int device_count() noexcept {
    // Without a driver this returns cudaErrorInsufficientDriver (35) and leaves n untouched; without a
    // GPU, cudaErrorNoDevice. Either way: no device. The sticky error is cleared so it cannot surface
    // in a later check.
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

std::string device_name(int index) {
    cudaDeviceProp prop{};
    DYAD_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    return prop.name;
}

std::string runtime_version() {
    int v = 0;
    DYAD_CUDA_CHECK(cudaRuntimeGetVersion(&v));
    return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

void* malloc_device(size_t nbytes, int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    void* p = nullptr;
    const cudaError_t st = cudaMalloc(&p, nbytes);
    if (st == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        (void)cudaMemGetInfo(&free_b, &total_b);
        throw CudaError(::dyad::detail::str("CUDA out of memory on device ", device, ": requested ", nbytes, " bytes, ",
                                            free_b, " of ", total_b, " bytes free; try a smaller batch"));
    }
    DYAD_CUDA_CHECK(st);
    return p;
}

void free_device(void* ptr, int device) noexcept {
    if (!ptr) return;
    DYAD_CUDA_WARN(cudaSetDevice(device));
    DYAD_CUDA_WARN(cudaFree(ptr));
}

void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    DYAD_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
}
void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    DYAD_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
}
void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    DYAD_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToDevice));
}
void memset_zero(void* dst, size_t nbytes, int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    DYAD_CUDA_CHECK(cudaMemset(dst, 0, nbytes));
}
void synchronize(int device) {
    DYAD_CUDA_CHECK(cudaSetDevice(device));
    DYAD_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace dyad::cuda
