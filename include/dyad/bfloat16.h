// bfloat16: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits). The same range as
// float32 with 3 significant decimal digits: the storage type of DType::bfloat16, which halves the memory
// traffic of activations while arithmetic stays in float32 (every kernel widens on load and rounds once on
// store). One definition for host and CUDA device code.
//
// float -> bfloat16 rounds to nearest, ties to even (what cuDNN, cuBLAS and PyTorch do); a NaN stays a NaN
// (quiet, with its sign); values beyond the largest bfloat16 round to infinity. bfloat16 -> float is exact.
// Conversions from other arithmetic types go through float (as PyTorch's do), so a double may round twice.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__CUDACC__)
#define DYAD_BF16_HD __host__ __device__
#else
#define DYAD_BF16_HD
#endif

namespace dyad {

struct bfloat16 {
    uint16_t bits = 0;

    bfloat16() = default;
    DYAD_BF16_HD explicit bfloat16(float f) : bits(round(f)) {}
    template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, float>>>
    DYAD_BF16_HD explicit bfloat16(T v) : bits(round(static_cast<float>(v))) {}

    DYAD_BF16_HD operator float() const {
        const uint32_t u = uint32_t(bits) << 16;
#if defined(__CUDA_ARCH__)
        return __uint_as_float(u);
#else
        float f;
        std::memcpy(&f, &u, sizeof f);
        return f;
#endif
    }

    // A bfloat16 made of raw bits (no rounding).
    DYAD_BF16_HD static bfloat16 from_bits(uint16_t b) {
        bfloat16 h;
        h.bits = b;
        return h;
    }

    // The bits of f rounded to nearest even; NaN kept quiet with its sign.
    DYAD_BF16_HD static uint16_t round(float f) {
#if defined(__CUDA_ARCH__)
        uint32_t u = __float_as_uint(f);
#else
        uint32_t u;
        std::memcpy(&u, &f, sizeof u);
#endif
        if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);  // NaN: set the quiet bit
        // Adding 0x7fff plus the lowest kept bit rounds half to even; a carry out of the mantissa moves to
        // the exponent, which is the correct rounding up (to infinity past the largest finite value).
        u += 0x7fffu + ((u >> 16) & 1u);
        return uint16_t(u >> 16);
    }
};

static_assert(sizeof(bfloat16) == 2, "bfloat16 is two bytes");

// The type arithmetic on T values is done in: float for bfloat16 (loaded, widened exactly, computed, rounded
// once on store), T itself otherwise.
template <typename T>
struct compute_type {
    using type = T;
};
template <>
struct compute_type<bfloat16> {
    using type = float;
};
template <typename T>
using compute_t = typename compute_type<T>::type;

}  // namespace dyad
