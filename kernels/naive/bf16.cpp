// bfloat16 kernels, naive: the float reference on widened operands, each result rounded once
// (kernels/bf16_cpu.inc). What the GPU's bfloat16 kernels are checked against.
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

#define DYAD_F32(fn) ::dyad::naive::fn<float>
#include "../bf16_cpu.inc"
#undef DYAD_F32

}  // namespace dyad::naive
