// The one place that knows the three kernel sets. DYAD_DISPATCH_FLOAT picks naive/omp/cuda from the
// device and the process-wide CPU kernel setting, and the element type from the dtype: inside the
// argument list, T names the element type (float or double). float64 runs on the naive kernels only.
#pragma once
#include "dyad/device.h"
#include "dyad/tensor.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"  // use_device
#endif

namespace dyad::detail {

enum class KernelSet { naive, omp, cuda };

inline KernelSet kernel_set(Device d) {
    if (d.is_cuda()) return KernelSet::cuda;
    return cpu_kernels() == CpuKernels::naive ? KernelSet::naive : KernelSet::omp;
}

[[noreturn]] void fail_dtype(const char* file, int line, const char* op, DType got);
[[noreturn]] void fail_cuda_dtype(const char* file, int line, const char* op, DType got);
[[noreturn]] void fail_no_cuda_build(const char* file, int line, const char* op);

}  // namespace dyad::detail

// DYAD_CUDA_CALL(device, FN, args...) calls dyad::cuda::FN(args...) on `device`; in a build without CUDA
// it throws (a CUDA tensor cannot exist there, so this is only reached by a bug).
#if DYAD_WITH_CUDA
#define DYAD_CUDA_CALL(device, FN, ...)           \
    do {                                          \
        ::dyad::cuda::use_device((device).index); \
        ::dyad::cuda::FN(__VA_ARGS__);            \
    } while (0)
#else
#define DYAD_CUDA_CALL(device, FN, ...) ::dyad::detail::fail_no_cuda_build(__FILE__, __LINE__, #FN)
#endif

// For CPU-only kernels (no CUDA twin; the op composes others on the GPU): the naive or omp kernel for a
// float32 CPU tensor by the kernel setting, naive<double> for float64. In every DYAD_DISPATCH_* argument list
// C names the type scalars, statistics and parameters travel in: T for float and double, float for
// bfloat16 (dyad::compute_t<T>).
#define DYAD_DISPATCH_CPU_FLOAT(dtype, FN, ...)                                                        \
    do {                                                                                               \
        const ::dyad::DType dyad_cpu_dt_ = (dtype);                                                    \
        if (dyad_cpu_dt_ == ::dyad::DType::float64) {                                                  \
            using T = double;                                                                          \
            using C = T;                                                                               \
            (void)sizeof(C);                                                                           \
            ::dyad::naive::FN<T>(__VA_ARGS__);                                                         \
        } else if (dyad_cpu_dt_ == ::dyad::DType::float32) {                                           \
            using T = float;                                                                           \
            using C = T;                                                                               \
            (void)sizeof(C);                                                                           \
            if (::dyad::detail::kernel_set(::dyad::Device::cpu()) == ::dyad::detail::KernelSet::naive) \
                ::dyad::naive::FN<T>(__VA_ARGS__);                                                     \
            else                                                                                       \
                ::dyad::omp::FN(__VA_ARGS__);                                                          \
        } else {                                                                                       \
            ::dyad::detail::fail_dtype(__FILE__, __LINE__, #FN, dyad_cpu_dt_);                         \
        }                                                                                              \
    } while (0)

// FN is called as dyad::naive::FN<T>(...), dyad::omp::FN(...) or dyad::cuda::FN(...). On a GPU only
// float32 runs (float64 there is a clear error naming the op, never a silent fallback).
#define DYAD_DISPATCH_FLOAT(device, dtype, FN, ...)                                 \
    do {                                                                            \
        const ::dyad::DType dyad_dt_ = (dtype);                                     \
        const ::dyad::Device dyad_dev_ = (device);                                  \
        if (dyad_dev_.is_cuda()) {                                                  \
            if (dyad_dt_ != ::dyad::DType::float32)                                 \
                ::dyad::detail::fail_cuda_dtype(__FILE__, __LINE__, #FN, dyad_dt_); \
            using T = float;                                                        \
            using C = T;                                                            \
            (void)sizeof(T); /* unused in a build without CUDA */                   \
            (void)sizeof(C);                                                        \
            DYAD_CUDA_CALL(dyad_dev_, FN, __VA_ARGS__);                             \
        } else {                                                                    \
            DYAD_DISPATCH_CPU_FLOAT(dyad_dt_, FN, __VA_ARGS__);                     \
        }                                                                           \
    } while (0)

// For kernels that also have bfloat16 overloads (bfloat16 activations and gradients, float arithmetic; see
// kernels/*.h): bfloat16 calls the set's overload, FN(...) with T = bfloat16 and C = float; float32 and
// float64 go as in DYAD_DISPATCH_FLOAT.
#define DYAD_DISPATCH_FLOAT_BF16(device, dtype, FN, ...)                                           \
    do {                                                                                           \
        const ::dyad::DType dyad_bf_dt_ = (dtype);                                                 \
        const ::dyad::Device dyad_bf_dev_ = (device);                                              \
        if (dyad_bf_dt_ == ::dyad::DType::bfloat16) {                                              \
            using T = ::dyad::bfloat16;                                                            \
            using C = float;                                                                       \
            (void)sizeof(T), (void)sizeof(C); /* unused in a build without CUDA */                 \
            if (dyad_bf_dev_.is_cuda())                                                            \
                DYAD_CUDA_CALL(dyad_bf_dev_, FN, __VA_ARGS__);                                     \
            else if (::dyad::detail::kernel_set(dyad_bf_dev_) == ::dyad::detail::KernelSet::naive) \
                ::dyad::naive::FN(__VA_ARGS__);                                                    \
            else                                                                                   \
                ::dyad::omp::FN(__VA_ARGS__);                                                      \
        } else {                                                                                   \
            DYAD_DISPATCH_FLOAT(dyad_bf_dev_, dyad_bf_dt_, FN, __VA_ARGS__);                       \
        }                                                                                          \
    } while (0)

// The CPU-only twin of DYAD_DISPATCH_FLOAT_BF16.
#define DYAD_DISPATCH_CPU_FLOAT_BF16(dtype, FN, ...)                                                   \
    do {                                                                                               \
        const ::dyad::DType dyad_cbf_dt_ = (dtype);                                                    \
        if (dyad_cbf_dt_ == ::dyad::DType::bfloat16) {                                                 \
            using T = ::dyad::bfloat16;                                                                \
            using C = float;                                                                           \
            if (::dyad::detail::kernel_set(::dyad::Device::cpu()) == ::dyad::detail::KernelSet::naive) \
                ::dyad::naive::FN(__VA_ARGS__);                                                        \
            else                                                                                       \
                ::dyad::omp::FN(__VA_ARGS__);                                                          \
        } else {                                                                                       \
            DYAD_DISPATCH_CPU_FLOAT(dyad_cbf_dt_, FN, __VA_ARGS__);                                    \
        }                                                                                              \
    } while (0)

// For kernels templated on every dtype in all three sets (fill, copy): T is given by the caller.
#define DYAD_DISPATCH_TEMPLATE(device, FN, ...)                                             \
    do {                                                                                    \
        const ::dyad::Device dyad_dev_ = (device);                                          \
        if (dyad_dev_.is_cuda())                                                            \
            DYAD_CUDA_CALL(dyad_dev_, FN, __VA_ARGS__);                                     \
        else if (::dyad::detail::kernel_set(dyad_dev_) == ::dyad::detail::KernelSet::naive) \
            ::dyad::naive::FN(__VA_ARGS__);                                                 \
        else                                                                                \
            ::dyad::omp::FN(__VA_ARGS__);                                                   \
    } while (0)
