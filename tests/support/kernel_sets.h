// One test harness over every kernel set. A kernel family's cases are written once, in tests/ops/, as
// functions of the kernel set under test; each test executable runs them against the sets it holds
// (kernel_sets(): omp in dyad_tests, cuda in dyad_cuda_tests, which skips with 77 without a GPU). The
// naive kernels are the reference every set is compared with, through the tolerance table
// (support/tolerances.h). A new backend adds a Kind, a branch of DYAD_KCALL and a column of the table;
// the cases run on it unchanged.
//
//   DYAD_KERNEL_TEST("relu_fwd writes every element", "[activation]") {
//       Tensor y = test::nan_buffer(ks, n);               // ks: the set under test
//       DYAD_KCALL(ks, relu_fwd, test::ptr(y), ...);      // omp::relu_fwd or cuda::relu_fwd
//       ...
//   }
#pragma once
#include "support/catch.h"

#include <cstdint>
#include <vector>

#include "dyad/dyad.h"
#if DYAD_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace dyad::test {

struct KernelSet {
    enum class Kind { omp, cuda };
    Kind kind;
    const char* name;  // "omp", "cuda": in every failure message
    Device device;     // where its operands live

    bool is_cuda() const { return kind == Kind::cuda; }
};

// The kernel sets this executable tests (tests/support/kernel_sets.cpp, compiled per executable).
const std::vector<KernelSet>& kernel_sets();

// Selects a kernel set for a scope: the omp CPU kernels on this thread, or CUDA device 0.
class KernelSetScope {
public:
    explicit KernelSetScope(const KernelSet& ks);
    ~KernelSetScope();
    KernelSetScope(const KernelSetScope&) = delete;
    KernelSetScope& operator=(const KernelSetScope&) = delete;

private:
    CpuKernelsGuard cpu_;
};

// Runs f() with the naive CPU kernels on CPU inputs: the reference.
template <typename F>
auto naive_reference(F&& f) {
    CpuKernelsGuard guard(CpuKernels::naive);
    return f();
}

// Operands for kernels called on raw pointers: a float32 buffer on the set's device holding v (with
// `offset` elements of padding in front: ptr(t) + offset starts 4 * offset bytes past the allocation's
// alignment), one of n NaN (an output the kernel must write completely), and the host copy back.
Tensor buffer(const KernelSet& ks, const std::vector<float>& v, int64_t offset = 0);
Tensor nan_buffer(const KernelSet& ks, int64_t n);
std::vector<float> host(const Tensor& t, int64_t offset = 0);
// Integer and byte buffers (indices, masks) the same way.
Tensor buffer_i32(const KernelSet& ks, const std::vector<int32_t>& v);
Tensor buffer_u8(const KernelSet& ks, const std::vector<uint8_t>& v);
std::vector<int32_t> host_i32(const Tensor& t);
std::vector<uint8_t> host_u8(const Tensor& t);
// The tensor's data pointer, or null for an undefined tensor (an optional operand left out).
template <typename T = float>
T* ptr(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

// A tensor moved to the set's device: always a copy, detached from any graph (to() of a tensor already on
// the device would share its storage, and a case that changes one side in place would change the other).
inline Tensor on(const KernelSet& ks, const Tensor& t) {
    return t.device() == ks.device ? t.detach().clone() : t.detach().to(ks.device);
}

}  // namespace dyad::test

// DYAD_KCALL(ks, FN, args...): the kernel FN of set ks (dyad::omp::FN or dyad::cuda::FN) on device
// pointers of that set. In a build without CUDA a cuda set cannot exist, and the branch throws.
#if DYAD_WITH_CUDA
#define DYAD_TEST_CUDA_CALL_(FN, ...)  \
    do {                               \
        ::dyad::cuda::use_device(0);   \
        ::dyad::cuda::FN(__VA_ARGS__); \
    } while (0)
#else
#define DYAD_TEST_CUDA_CALL_(FN, ...) FAIL("a cuda kernel set in a build without CUDA")
#endif
#define DYAD_KCALL(ks, FN, ...)                        \
    do {                                               \
        switch ((ks).kind) {                           \
            case ::dyad::test::KernelSet::Kind::omp:   \
                ::dyad::omp::FN(__VA_ARGS__);          \
                break;                                 \
            case ::dyad::test::KernelSet::Kind::cuda:  \
                DYAD_TEST_CUDA_CALL_(FN, __VA_ARGS__); \
                break;                                 \
        }                                              \
    } while (0)

// DYAD_KERNEL_TEST(name, tags) { body }: one Catch test case that runs body once per kernel set of this
// executable, with `ks` naming the set (and the set's scope active). Its tags get the set's tag
// ([omp] in dyad_tests, [cuda] in dyad_cuda_tests) from DYAD_TEST_SET_TAGS.
#ifndef DYAD_TEST_SET_TAGS
#error "DYAD_TEST_SET_TAGS names the kernel sets of this test executable (tests/CMakeLists.txt)"
#endif
#define DYAD_KT_CAT2_(a, b) a##b
#define DYAD_KT_CAT_(a, b) DYAD_KT_CAT2_(a, b)
#define DYAD_KERNEL_TEST_IMPL_(FN, NAME, TAGS)                                        \
    static void FN(const ::dyad::test::KernelSet& ks);                                \
    TEST_CASE(NAME, TAGS DYAD_TEST_SET_TAGS) {                                        \
        for (const ::dyad::test::KernelSet& dyad_ks_ : ::dyad::test::kernel_sets()) { \
            INFO("kernel set " << dyad_ks_.name);                                     \
            ::dyad::test::KernelSetScope dyad_scope_(dyad_ks_);                       \
            FN(dyad_ks_);                                                             \
        }                                                                             \
    }                                                                                 \
    static void FN([[maybe_unused]] const ::dyad::test::KernelSet& ks)
#define DYAD_KERNEL_TEST(NAME, TAGS) DYAD_KERNEL_TEST_IMPL_(DYAD_KT_CAT_(dyad_kernel_test_, __LINE__), NAME, TAGS)
