// Output buffers that show which elements a kernel left unwritten. A kernel whose contract is to WRITE
// its output (forward passes, statistics, masks) gets a buffer full of NaN (or, for integer outputs, a
// value it never produces): an element it forgets stays NaN, which no finite reference matches and
// count_nan finds even when two kernel sets forget the same element. A kernel whose contract is to
// ACCUMULATE (the *_bwd kernels) gets a buffer of known finite values instead, and the test checks that
// the kernel added to them.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "dyad/dyad.h"

namespace dyad::test {

// Not a valid index (argmax, pooling windows) and not a valid mask byte (0 or 1): outputs no kernel writes.
constexpr int32_t kUnwrittenIndex = -1;
constexpr uint8_t kUnwrittenByte = 0xa5;

template <typename T>
std::vector<T> nan_filled(int64_t n) {
    return std::vector<T>(static_cast<size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// A float32 tensor of n NaN on `device`, for kernels called on device pointers.
inline Tensor nan_tensor(int64_t n, Device device = Device::cpu()) {
    return Tensor::full({n}, std::numeric_limits<double>::quiet_NaN(), DType::float32, device);
}

template <typename T>
int64_t count_nan(const std::vector<T>& v) {
    int64_t n = 0;
    for (const T& x : v) n += std::isnan(x) ? 1 : 0;
    return n;
}

// Elements of v that are neither 0 nor 1 (an unwritten mask or finiteness flag).
inline int64_t count_not_01(const std::vector<uint8_t>& v) {
    int64_t n = 0;
    for (uint8_t b : v) n += b > 1 ? 1 : 0;
    return n;
}

// The accumulate contract of a *_bwd kernel: `after` (the kernel run on a buffer that held `before`) is
// `before` plus `fresh` (the same kernel run on zeros), up to the rounding of that one addition.
inline bool added_to(const std::vector<float>& after, const std::vector<float>& before, const std::vector<float>& fresh,
                     double tol = 1e-6) {
    if (after.size() != before.size() || after.size() != fresh.size()) return false;
    for (size_t i = 0; i < after.size(); i++) {
        const double expect = double(before[i]) + double(fresh[i]);
        if (!(std::abs(double(after[i]) - expect) <= tol * (1.0 + std::abs(expect)))) return false;
    }
    return true;
}

}  // namespace dyad::test
