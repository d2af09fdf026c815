// Seeded random test data, optionally as non-contiguous views with the requested shape.
#pragma once
#include "dyad/dyad.h"

namespace dyad::test {

// How a test tensor is laid out in memory: contiguous, a transposed copy viewed back, or a strided slice
// of a larger tensor (every other element of the last dim).
enum class Layout { contiguous, transposed, strided };

inline const char* layout_name(Layout l) {
    return l == Layout::contiguous ? "contiguous" : l == Layout::transposed ? "transposed" : "strided";
}

// Normal(0, 1) values of `shape` laid out as asked; the values depend only on the seed and the shape.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, Layout layout = Layout::contiguous,
                            DType dtype = DType::float32) {
    manual_seed(seed);
    NoGradGuard ng;
    Tensor base = Tensor::randn(shape, dtype);
    if (layout == Layout::transposed && shape.size() >= 2) {
        // Memory holds the transpose; the returned view has `shape` with swapped strides.
        return base.transpose(-1, -2).contiguous().transpose(-1, -2);
    }
    if (layout == Layout::strided && !shape.empty()) {
        // Every other element of a last dim twice as wide.
        Shape wide = shape;
        wide.back() *= 2;
        Tensor view = Tensor::zeros(wide, dtype).slice(-1, 0, wide.back(), 2);
        view.copy_(base);
        return view;
    }
    return base;
}

}  // namespace dyad::test
