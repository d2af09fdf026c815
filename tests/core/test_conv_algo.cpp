// The rules by which the CUDA convolution picks cuDNN algorithms and falls back when one is refused
// (kernels/cuda/conv_algo.h), checked without a GPU on made-up Find results and statuses. Built only with
// the CUDA backend; runs on any machine (no device is touched).
#include "support/catch.h"

#include <vector>

#include "kernels/cuda/conv_algo.h"

using namespace dyad::cuda;
using conv_algo::Candidate;

namespace {

cudnnConvolutionFwdAlgoPerf_t perf(cudnnConvolutionFwdAlgo_t algo, cudnnStatus_t status, size_t memory,
                                   cudnnDeterminism_t det, cudnnMathType_t math) {
    cudnnConvolutionFwdAlgoPerf_t p{};
    p.algo = algo;
    p.status = status;
    p.time = 1.0f;
    p.memory = memory;
    p.determinism = det;
    p.mathType = math;
    return p;
}

std::vector<int> algos(const std::vector<Candidate>& c) {
    std::vector<int> out;
    for (const Candidate& x : c) out.push_back(x.algo);
    return out;
}

// What a Find on an Ampere-or-later GPU may return with a tensor-op descriptor: fastest first, mixed math
// types, one failed candidate, one non-deterministic, one FP16 down-conversion.
const std::vector<cudnnConvolutionFwdAlgoPerf_t> kFound = {
    perf(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_STATUS_SUCCESS, 4096, CUDNN_DETERMINISTIC,
         CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
    perf(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_STATUS_SUCCESS, 1024, CUDNN_DETERMINISTIC,
         CUDNN_TENSOR_OP_MATH),
    perf(CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_STATUS_NOT_SUPPORTED, 0, CUDNN_DETERMINISTIC, CUDNN_DEFAULT_MATH),
    perf(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_STATUS_SUCCESS, 2048, CUDNN_NON_DETERMINISTIC, CUDNN_DEFAULT_MATH),
    perf(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_STATUS_SUCCESS, 0, CUDNN_DETERMINISTIC, CUDNN_DEFAULT_MATH),
};

}  // namespace

TEST_CASE("conv algorithms: Find's results are kept fastest first, filtered by the settings", "[conv][cuda-host]") {
    const int n = int(kFound.size());
    SECTION("tf32: tensor cores allowed, FP16 down-conversion and failures dropped, math type kept") {
        const std::vector<Candidate> c = conv_algo::rank_candidates(kFound.data(), n, Math::tf32, false);
        REQUIRE(algos(c) == std::vector<int>{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                             CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
                                             CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM});
        REQUIRE(c[0].math == CUDNN_TENSOR_OP_MATH);
        REQUIRE(c[0].memory == 1024);
        REQUIRE(c[1].math == CUDNN_DEFAULT_MATH);
        REQUIRE(c[2].math == CUDNN_DEFAULT_MATH);
    }
    SECTION("bf16 behaves as tf32 for convolutions: never the FP16 conversion") {
        const std::vector<Candidate> c = conv_algo::rank_candidates(kFound.data(), n, Math::bf16, false);
        REQUIRE(algos(c).size() == 3);
        for (const Candidate& x : c) REQUIRE(x.math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
        REQUIRE(conv_algo::search_math(Math::bf16) == CUDNN_TENSOR_OP_MATH);
    }
    SECTION("strict fp32: no tensor cores, and FMA math set even where Find reported the default") {
        const std::vector<Candidate> c = conv_algo::rank_candidates(kFound.data(), n, Math::fp32, false);
        REQUIRE(algos(c) ==
                std::vector<int>{CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM});
        for (const Candidate& x : c) REQUIRE(x.math == CUDNN_FMA_MATH);
        REQUIRE(conv_algo::search_math(Math::fp32) == CUDNN_FMA_MATH);
    }
    SECTION("deterministic mode drops non-deterministic algorithms") {
        const std::vector<Candidate> c = conv_algo::rank_candidates(kFound.data(), n, Math::tf32, true);
        REQUIRE(algos(c) == std::vector<int>{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                             CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM});
    }
    SECTION("nothing acceptable: an empty list (the pass runs im2col)") {
        REQUIRE(conv_algo::rank_candidates(kFound.data(), 3, Math::fp32, false).empty());
        REQUIRE(conv_algo::rank_candidates(kFound.data(), 0, Math::tf32, false).empty());
    }
}

TEST_CASE("conv algorithms: which refusals give way to the next algorithm and which are thrown", "[conv][cuda-host]") {
    // Refusals of these arguments by this algorithm: the next one (or im2col) can still compute the result.
    for (cudnnStatus_t st :
         {CUDNN_STATUS_NOT_SUPPORTED, CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT,
          CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, CUDNN_STATUS_BAD_PARAM,
          CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT,
          CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED, CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
          CUDNN_STATUS_INTERNAL_ERROR_BAD_LAUNCH_PARAM}) {
        INFO("status " << int(st));
        REQUIRE(conv_algo::try_next(st));
    }
    // Work may have run (the backward passes accumulate), the GPU may have faulted, or dyad passed a null
    // pointer: thrown, never hidden behind another algorithm.
    for (cudnnStatus_t st :
         {CUDNN_STATUS_SUCCESS, CUDNN_STATUS_EXECUTION_FAILED, CUDNN_STATUS_EXECUTION_FAILED_CUDART,
          CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_BAD_PARAM_NULL_POINTER}) {
        INFO("status " << int(st));
        REQUIRE_FALSE(conv_algo::try_next(st));
    }
}
