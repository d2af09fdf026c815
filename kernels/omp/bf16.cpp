// bfloat16 kernels, omp: omp's float kernels on widened operands, each result rounded once
// (kernels/bf16_cpu.inc). On a CPU bfloat16 saves no time (the conversions are extra work); it exists so a
// bfloat16 model runs, and is checked, on every set.
#include <algorithm>
#include <memory>
#include <vector>

#include "../activation.h"
#include "../conv.h"
#include "../elementwise.h"
#include "../gemm.h"
#include "../norm.h"
#include "../optim.h"
#include "../pool.h"
#include "../reduce.h"

namespace dyad::omp {

namespace {
// The conversions over the threads, in blocks of 16384 (small arrays on the calling thread).
constexpr int64_t kBlock = 16384;
void widen(float* dst, const bfloat16* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 4 * kBlock)
    for (int64_t b = 0; b < n; b += kBlock)
        for (int64_t i = b, e = std::min(n, b + kBlock); i < e; i++) dst[i] = static_cast<float>(src[i]);
}
void narrow(bfloat16* dst, const float* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 4 * kBlock)
    for (int64_t b = 0; b < n; b += kBlock)
        for (int64_t i = b, e = std::min(n, b + kBlock); i < e; i++) dst[i] = bfloat16(src[i]);
}
}  // namespace

// Called with float pointers, each name resolves to its float overload.
#define DYAD_F32(fn, ...) ::dyad::omp::fn(__VA_ARGS__)
#include "../bf16_cpu.inc"
#undef DYAD_F32

}  // namespace dyad::omp
