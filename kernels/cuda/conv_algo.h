// Which cuDNN convolution algorithms dyad runs, and what it does when one fails: the rules conv.cpp
// follows, kept apart so they are tested without a GPU (tests/core/test_conv_algo.cpp). Host code; needs
// cudnn.h but no device.
//
// cudnnFind*AlgorithmEx times every algorithm on the real inputs and returns them fastest first, each with
// a status, its workspace, its determinism and the math type it ran with. dyad keeps the acceptable ones
// in that order (rank_candidates) and, at each execution, runs the first that cuDNN accepts: an algorithm
// that Find timed can still be refused later (other pointers, so other alignment; no memory for its
// workspace), and then the next one runs, and im2col + GEMM when none is left (for bfloat16 tensors, the
// float path on widened copies of the operands, rounded back once).
#pragma once
#include <cudnn.h>

#include <cstddef>
#include <vector>

#include "runtime.h"

namespace dyad::cuda::conv_algo {

// One algorithm of one pass, as Find reported it, with the math type to set before running it.
struct Candidate {
    int algo = 0;
    size_t memory = 0;  // workspace bytes
    cudnnMathType_t math = CUDNN_FMA_MATH;
};

// The math type the convolution descriptor carries during the search: FMA only in strict FP32, tensor
// cores (TF32) otherwise. Never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: for FP32 tensors that lets cuDNN
// convert to FP16 (not bf16), whose range ends at 65504.
inline cudnnMathType_t search_math(Math m) { return m == Math::fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH; }

// The math setting a convolution's algorithms are searched and filtered under (search_math,
// rank_candidates): math() for float tensors. bfloat16 tensors always take Math::bf16, whatever math()
// says: tensor cores allowed, with float accumulation (the convolution descriptor's compute type), never the
// FP16 down-conversion. Their operands are bfloat16 already, so a product of two is exact in float on the
// tensor cores as in an FMA; strict FP32 would only rule out the fast kernels.
inline Math tensor_math(Math m, bool bf16_tensors) { return bf16_tensors ? Math::bf16 : m; }

// Find's results (fastest first) filtered to what the settings allow, in the same order: success only;
// deterministic ones only in deterministic mode; no FP16 down-conversion ever; no tensor cores in strict
// FP32. Each keeps the math type Find reported, to be set on the descriptor before it runs, except in
// strict FP32, where it runs with FMA math whatever was reported (CUDNN_DEFAULT_MATH would allow TF32 on
// Ampere and later).
template <typename Perf>
std::vector<Candidate> rank_candidates(const Perf* perf, int count, Math m, bool deterministic) {
    std::vector<Candidate> out;
    for (int i = 0; i < count; i++) {
        const Perf& r = perf[i];
        if (r.status != CUDNN_STATUS_SUCCESS) continue;
        if (deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
        if (r.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
        if (m == Math::fp32 && r.mathType == CUDNN_TENSOR_OP_MATH) continue;
        Candidate c;
        c.algo = static_cast<int>(r.algo);
        c.memory = r.memory;
        c.math = m == Math::fp32 ? CUDNN_FMA_MATH : r.mathType;
        out.push_back(c);
    }
    return out;
}

// Whether a status returned by an execution call means "this algorithm cannot run these arguments", so the
// next candidate should be tried: not supported (any reason), bad parameters (cuDNN's legacy calls report
// unsupported configurations and misaligned pointers this way), a workspace too small, or an allocation or
// launch configuration cuDNN could not make. A failure during execution (CUDNN_STATUS_EXECUTION_FAILED*)
// is not retried: work may already have run, the backward passes accumulate into their outputs, and a
// faulted GPU would only fail again; it is thrown.
inline bool try_next(cudnnStatus_t st) {
    switch (CUDNN_STATUS_CATEGORY(static_cast<int>(st))) {
        case CUDNN_STATUS_NOT_SUPPORTED:
        case CUDNN_STATUS_BAD_PARAM:
            return st != CUDNN_STATUS_BAD_PARAM_NULL_POINTER;  // a null pointer is a bug, not a limitation
        case CUDNN_STATUS_INTERNAL_ERROR:
            return st == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                   st == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED ||
                   st == CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM;
        default:
            return false;
    }
}

// Diagnostics and a test hook. fallbacks(): how many times an algorithm was refused at execution and the
// next one (or im2col) ran instead, since the start. fail_next(n): the next n execution attempts report
// CUDNN_STATUS_NOT_SUPPORTED without running (tests exercise the fallback with it; 0 by default).
size_t fallbacks();
void fail_next(int n);

}  // namespace dyad::cuda::conv_algo
