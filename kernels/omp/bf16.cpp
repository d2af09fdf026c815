// bfloat16 kernels, omp: omp's float kernels on widened operands, each result rounded once
// (kernels/bf16_cpu.inc). On a CPU bfloat16 saves no time (the conversions are extra work); it exists so a
// bfloat16 model runs, and is checked, on every set.
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

// Called with float pointers, each name resolves to its float overload.
#define DYAD_F32(fn) ::dyad::omp::fn
#include "../bf16_cpu.inc"
#undef DYAD_F32

}  // namespace dyad::omp
