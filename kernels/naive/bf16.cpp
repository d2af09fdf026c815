// bfloat16 kernels, naive: the float reference on widened operands, each result rounded once
// (kernels/bf16_cpu.inc). What the GPU's bfloat16 kernels are checked against.
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

namespace dyad::naive {

namespace {
void widen(float* dst, const bfloat16* src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = static_cast<float>(src[i]);
}
void narrow(bfloat16* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = bfloat16(src[i]);
}
}  // namespace

#define DYAD_F32(fn, ...) ::dyad::naive::fn<float>(__VA_ARGS__)
#include "../bf16_cpu.inc"
#undef DYAD_F32

}  // namespace dyad::naive
