// The kernel sets of one test executable (compiled into each with its own DYAD_TEST_CUDA_EXE): dyad_tests
// tests the omp CPU kernels, dyad_cuda_tests the CUDA kernels (it only runs where a GPU is usable). The
// naive kernels are the reference of both, never a set under test.
#include "support/kernel_sets.h"

#include <limits>

namespace dyad::test {

const std::vector<KernelSet>& kernel_sets() {
#if DYAD_TEST_CUDA_EXE
    static const std::vector<KernelSet> sets = {{KernelSet::Kind::cuda, "cuda", Device::cuda(0)}};
#else
    static const std::vector<KernelSet> sets = {{KernelSet::Kind::omp, "omp", Device::cpu()}};
#endif
    return sets;
}

KernelSetScope::KernelSetScope(const KernelSet& ks) : cpu_(CpuKernels::omp) {
#if DYAD_WITH_CUDA
    if (ks.is_cuda()) cuda::use_device(0);
#else
    (void)ks;
#endif
}

KernelSetScope::~KernelSetScope() = default;

Tensor buffer(const KernelSet& ks, const std::vector<float>& v, int64_t offset) {
    std::vector<float> padded(size_t(offset), 0.0f);
    padded.insert(padded.end(), v.begin(), v.end());
    return Tensor::from_vector(padded, {int64_t(padded.size())}).to(ks.device);
}

Tensor nan_buffer(const KernelSet& ks, int64_t n) {
    return Tensor::full({n}, std::numeric_limits<double>::quiet_NaN(), DType::float32, ks.device);
}

std::vector<float> host(const Tensor& t, int64_t offset) {
    const std::vector<float> v = t.to(Device::cpu()).to_vector<float>();
    return std::vector<float>(v.begin() + offset, v.end());
}

Tensor buffer_i32(const KernelSet& ks, const std::vector<int32_t>& v) {
    return Tensor::from_vector(v, {int64_t(v.size())}).to(ks.device);
}

Tensor buffer_u8(const KernelSet& ks, const std::vector<uint8_t>& v) {
    return Tensor::from_vector(v, {int64_t(v.size())}).to(ks.device);
}

std::vector<int32_t> host_i32(const Tensor& t) { return t.to(Device::cpu()).to_vector<int32_t>(); }
std::vector<uint8_t> host_u8(const Tensor& t) { return t.to(Device::cpu()).to_vector<uint8_t>(); }

}  // namespace dyad::test
