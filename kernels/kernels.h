// The kernel contract: every family's naive, omp (and cuda) declarations. Rules that hold everywhere:
// raw pointers + POD shapes (shapes.h), no Tensor; row-major layouts; *_bwd kernels accumulate into their
// gradient outputs (dx += ...) and never zero them; naive kernels are templates instantiated for float and
// double and are the reference every other backend is tested against.
#pragma once
#include "activation.h"
#include "elementwise.h"
#include "gemm.h"
#include "reduce.h"
#include "shapes.h"
