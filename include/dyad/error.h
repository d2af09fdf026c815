// Errors. Host code throws dyad::Error (or CudaError for CUDA, cuBLAS and cuDNN failures); library code
// never exits or aborts. Messages read "<file>:<line>: <op>: <what is wrong, with the values>".
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#include "dyad/export.h"

DYAD_PUBLIC_BEGIN

namespace dyad {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct CudaError : Error {
    using Error::Error;
};
// A GPU allocation that cannot be met (the device is full, or a limit set with cuda::set_memory_limit):
// the message names the request, what dyad holds, what the pool reserves and what the device has free.
struct OutOfMemoryError : CudaError {
    using CudaError::CudaError;
};

namespace detail {
template <typename... Args>
std::string str(const Args&... args) {
    std::ostringstream os;
    (os << ... << args);
    return os.str();
}
[[noreturn]] void fail(const char* file, int line, const std::string& msg);
}  // namespace detail
}  // namespace dyad

// Always on. Throws dyad::Error with file, line and the streamed message when cond is false.
#define DYAD_CHECK(cond, ...)                                                                    \
    do {                                                                                         \
        if (!(cond)) ::dyad::detail::fail(__FILE__, __LINE__, ::dyad::detail::str(__VA_ARGS__)); \
    } while (0)

// Internal invariant (should be impossible): checked in debug builds only.
#ifndef NDEBUG
#define DYAD_ASSERT(cond)                                                                            \
    do {                                                                                             \
        if (!(cond)) ::dyad::detail::fail(__FILE__, __LINE__, "internal error: " #cond " is false"); \
    } while (0)
#else
#define DYAD_ASSERT(cond) \
    do {                  \
    } while (0)
#endif

DYAD_PUBLIC_END
