// Error formatting and the throw helpers used by DYAD_CHECK and the dispatch macros.
#include "dyad/error.h"

#include <cstring>

#include "dyad/tensor.h"
#include "lib/dispatch.h"

namespace dyad::detail {

[[noreturn]] void fail(const char* file, int line, const std::string& msg) {
    // Only the file name: full build paths make messages long and machine-specific.
    const char* base = std::strrchr(file, '/');
    throw Error(str(base ? base + 1 : file, ":", line, ": ", msg));
}

namespace {
// What to do about a bfloat16 operand of an op without bfloat16 kernels (nothing for other dtypes).
const char* bf16_hint(DType got) {
    return got == DType::bfloat16 ? "; this op has no bfloat16 kernel: compute it in float32 (x.to(DType::float32))"
                                  : "";
}
}  // namespace

[[noreturn]] void fail_dtype(const char* file, int line, const char* op, DType got) {
    fail(file, line, str(op, ": dtype ", dtype_name(got), " is not supported (float32 or float64)", bf16_hint(got)));
}

[[noreturn]] void fail_cuda_dtype(const char* file, int line, const char* op, DType got) {
    fail(file, line,
         str(op, ": dtype ", dtype_name(got),
             " is not supported on a GPU (float32 only; float64 runs on the CPU's naive kernels)", bf16_hint(got)));
}

[[noreturn]] void fail_no_cuda_build(const char* file, int line, const char* op) {
    fail(file, line, str(op, ": this build of dyad has no CUDA support"));
}

}  // namespace dyad::detail
