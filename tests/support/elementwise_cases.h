// Shared case lists and inputs for the elementwise and activation tests: the omp-vs-naive tests and the
// CUDA-vs-naive tests run the same op tables, layouts and data.
#pragma once
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "dyad/dyad.h"
#include "kernels/elementwise.h"
#include "support/random.h"

namespace dyad::test {

constexpr DType kAllTypes[] = {DType::float32, DType::float64, DType::int32, DType::int64, DType::uint8};
constexpr Layout kLayouts[] = {Layout::contiguous, Layout::transposed, Layout::strided};

// Normal(0, 1) values laid out as asked; for ops defined on x > 0, exp(x / 2) instead (about 0.1 to 8).
inline Tensor input(const Shape& shape, uint64_t seed, Layout layout, bool positive = false) {
    NoGradGuard ng;
    Tensor x = random_tensor(shape, seed, layout);
    if (positive) x.copy_(exp(mul(x, 0.5)));
    return x;
}

// Normal values with exact zeros (both signs) mixed in: relu's kink must be hit, not just approached.
inline Tensor with_zeros(const Shape& shape, uint64_t seed, Layout layout) {
    NoGradGuard ng;
    Tensor x = random_tensor(shape, seed, layout);
    std::vector<float> v = x.contiguous().to_vector<float>();
    for (size_t i = 0; i < v.size(); i += 5) v[i] = (i % 2) ? -0.0f : 0.0f;
    x.copy_(Tensor::from_vector(v, shape));
    return x;
}

// relu_bwd kernel data: x of -1.5, -0.5, 0.5, 1.5 with exact zeros; dy holding inf and NaN (also where
// x <= 0, where neither may leak into dx); dx starting with -0 and other values (a -0 must stay -0 where
// x <= 0: an added +0 would flip it).
struct ReluBwdData {
    std::vector<float> x, dy, dx0;
};
inline ReluBwdData relu_bwd_data(int64_t n) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    ReluBwdData d{std::vector<float>(size_t(n)), std::vector<float>(size_t(n)), std::vector<float>(size_t(n))};
    for (int64_t i = 0; i < n; i++) {
        d.x[size_t(i)] = float(i % 4) - 1.5f;  // -1.5, -0.5, 0.5, 1.5
        if (i % 7 == 0) d.x[size_t(i)] = 0.0f;
        d.dy[size_t(i)] = i % 3 == 0 ? inf : i % 3 == 1 ? nan : 0.25f * float(i % 11);
        d.dx0[size_t(i)] = i % 2 ? -0.0f : float(i % 5);
    }
    return d;
}

// A destination laid out as asked, holding `values` (converted to `dtype`), with the whole storage behind
// it (the gaps of a strided view included) so that a test can see writes outside the view.
struct Dest {
    Tensor storage, view;
};
inline Dest make_dest(const Tensor& values, Layout layout, DType dtype, Device device = Device::cpu()) {
    NoGradGuard ng;
    const Shape& shape = values.shape();
    Dest d;
    if (layout == Layout::transposed && shape.size() >= 2) {
        Shape swapped = shape;
        std::swap(swapped[swapped.size() - 1], swapped[swapped.size() - 2]);
        d.storage = Tensor::zeros(swapped, dtype, device);
        d.view = d.storage.transpose(-1, -2);
    } else if (layout == Layout::strided && !shape.empty()) {
        Shape wide = shape;
        wide.back() *= 2;
        d.storage = Tensor::zeros(wide, dtype, device);
        d.view = d.storage.slice(-1, 0, wide.back(), 2);
    } else {
        d.storage = Tensor::zeros(shape, dtype, device);
        d.view = d.storage;
    }
    d.view.copy_(values);
    return d;
}

// A copy of x on `device` with x's layout (x made by random_tensor, input or make_dest with `layout`):
// a transposed or strided view there too, with the same strides. (Tensor::to packs its result.)
inline Tensor same_layout_on(const Tensor& x, Layout layout, Device device) {
    NoGradGuard ng;
    if (layout == Layout::transposed && x.dim() >= 2)
        return x.transpose(-1, -2).contiguous().to(device).transpose(-1, -2);
    return make_dest(x, layout, x.dtype(), device).view;
}

// Uniform values in [0, 100): every dtype holds them (uint8 and int32 after truncation).
inline Tensor values_0_100(const Shape& shape, uint64_t seed) {
    NoGradGuard ng;
    manual_seed(seed);
    return mul(Tensor::rand(shape, DType::float64), 100.0);
}

// ---------------------------------------------------------------------------- op tables
struct UnaryCase {
    const char* name;
    std::function<Tensor(const Tensor&)> fn;
    bool positive;  // defined on x > 0 only
    bool libm;      // computed by exp, log or pow (whose last bit differs between math libraries)
};
inline const std::vector<UnaryCase>& unary_cases() {
    static const std::vector<UnaryCase> c = {
        {"neg", [](const Tensor& x) { return neg(x); }, false, false},
        {"exp", [](const Tensor& x) { return exp(x); }, false, true},
        {"log", [](const Tensor& x) { return log(x); }, true, true},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, true, false},
        {"add(x, 1.5)", [](const Tensor& x) { return add(x, 1.5); }, false, false},
        {"sub(x, 0.25)", [](const Tensor& x) { return sub(x, 0.25); }, false, false},
        {"sub(2, x)", [](const Tensor& x) { return sub(2.0, x); }, false, false},
        {"mul(x, -3)", [](const Tensor& x) { return mul(x, -3.0); }, false, false},
        {"div(x, 7)", [](const Tensor& x) { return div(x, 7.0); }, false, false},
        {"div(1, x)", [](const Tensor& x) { return div(1.0, x); }, false, false},
        {"pow(x, 1.7)", [](const Tensor& x) { return pow(x, 1.7); }, true, true},
        {"pow(x, 3)", [](const Tensor& x) { return pow(x, 3.0); }, false, true},
        {"clamp(x, -0.5, 0.8)", [](const Tensor& x) { return clamp(x, -0.5, 0.8); }, false, false},
        {"abs", [](const Tensor& x) { return abs(x); }, false, false},
        {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, false, true},
        {"tanh", [](const Tensor& x) { return tanh(x); }, false, true},
    };
    return c;
}

struct BinaryCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> fn;
    bool positive;  // both operands positive (pow: the base, and a gradient w.r.t. b needs log(a))
    bool libm;      // pow
};
inline const std::vector<BinaryCase>& binary_cases() {
    static const std::vector<BinaryCase> c = {
        {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, false, false},
        {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, false, false},
        {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, false, false},
        {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, false, false},
        {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, true, true},
    };
    return c;
}

// Layout pairs for binary ops: both alike, and mixed (a contiguous operand next to a strided one).
inline const std::vector<std::pair<Layout, Layout>>& binary_layouts() {
    static const std::vector<std::pair<Layout, Layout>> l = {{Layout::contiguous, Layout::contiguous},
                                                             {Layout::transposed, Layout::transposed},
                                                             {Layout::strided, Layout::strided},
                                                             {Layout::contiguous, Layout::strided},
                                                             {Layout::transposed, Layout::contiguous}};
    return l;
}

// ---------------------------------------------------------------------------- comparisons and where
struct CompareCase {
    const char* name;
    CompareOp op;
    std::function<Tensor(const Tensor&, const Tensor&)> fn;
    std::function<Tensor(const Tensor&, double)> scalar_fn;
};
inline const std::vector<CompareCase>& compare_cases() {
    static const std::vector<CompareCase> c = {
        {"eq", CompareOp::eq, [](const Tensor& a, const Tensor& b) { return eq(a, b); },
         [](const Tensor& a, double s) { return eq(a, s); }},
        {"ne", CompareOp::ne, [](const Tensor& a, const Tensor& b) { return ne(a, b); },
         [](const Tensor& a, double s) { return ne(a, s); }},
        {"lt", CompareOp::lt, [](const Tensor& a, const Tensor& b) { return lt(a, b); },
         [](const Tensor& a, double s) { return lt(a, s); }},
        {"le", CompareOp::le, [](const Tensor& a, const Tensor& b) { return le(a, b); },
         [](const Tensor& a, double s) { return le(a, s); }},
        {"gt", CompareOp::gt, [](const Tensor& a, const Tensor& b) { return gt(a, b); },
         [](const Tensor& a, double s) { return gt(a, s); }},
        {"ge", CompareOp::ge, [](const Tensor& a, const Tensor& b) { return ge(a, b); },
         [](const Tensor& a, double s) { return ge(a, s); }},
    };
    return c;
}

// Values from {-1, 0, 1, 2} (so equal pairs are common), as `dtype` (uint8: from {0, 1, 2, 3}), laid out as
// asked; floating tensors also hold -0.0 and a NaN about every 13th element.
inline Tensor tie_values(const Shape& shape, uint64_t seed, Layout layout, DType dtype) {
    NoGradGuard ng;
    const int64_t n = shape_numel(shape);
    std::vector<double> v(static_cast<size_t>(n));
    uint64_t st = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < v.size(); i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        const int k = int((st >> 33) % 4);
        v[i] = dtype == DType::uint8 ? double(k) : double(k - 1);
        if (is_floating(dtype) && (st >> 20) % 13 == 0) v[i] = std::numeric_limits<double>::quiet_NaN();
        if (is_floating(dtype) && v[i] == 0 && (st >> 40) % 2) v[i] = -0.0;
    }
    return make_dest(Tensor::from_vector(v, shape).to(dtype), layout, dtype).view;
}

// A uint8 mask of `shape` (about half ones) laid out as asked; nonzero values other than 1 mixed in, which
// where must treat as true.
inline Tensor mask_values(const Shape& shape, uint64_t seed, Layout layout) {
    NoGradGuard ng;
    const int64_t n = shape_numel(shape);
    std::vector<uint8_t> v(static_cast<size_t>(n));
    uint64_t st = seed * 2862933555777941757ULL + 3037000493ULL;
    for (size_t i = 0; i < v.size(); i++) {
        st = st * 2862933555777941757ULL + 3037000493ULL;
        const int k = int((st >> 33) % 8);
        v[i] = k < 4 ? 0 : k == 7 ? 200 : 1;
    }
    return make_dest(Tensor::from_vector(v, shape), layout, DType::uint8).view;
}

// Shapes for the dtype-converting copies.
inline const std::vector<Shape>& copy_shapes() {
    static const std::vector<Shape> s = {{7}, {3, 5}, {17, 1}, {2, 3, 5, 7}, {128, 33}, {8, 32, 17, 9}};
    return s;
}

// ---------------------------------------------------------------------------- kernels directly
// The unary ops of unary_cases() as kernel calls.
struct UnaryKernelCase {
    const char* name;
    UnaryOp op;
    float p0, p1;
    bool positive;  // defined on x > 0 only
    bool libm;      // computed by exp, log or pow
    bool uses_y;    // the derivative reads y = f(x) (unary_bwd may get a null y for the others)
    bool bwd_libm;  // the derivative calls libm itself (pow's x^(p0 - 1)); the others use y or arithmetic
};
inline const std::vector<UnaryKernelCase>& unary_kernel_cases() {
    static const std::vector<UnaryKernelCase> c = {
        {"neg", UnaryOp::neg, 0, 0, false, false, false, false},
        {"exp", UnaryOp::exp, 0, 0, false, true, true, false},
        {"log", UnaryOp::log, 0, 0, true, true, false, false},
        {"sqrt", UnaryOp::sqrt, 0, 0, true, false, true, false},
        {"add_scalar 1.5", UnaryOp::add_scalar, 1.5f, 0, false, false, false, false},
        {"mul_scalar -3", UnaryOp::mul_scalar, -3.0f, 0, false, false, false, false},
        {"rsub_scalar 2", UnaryOp::rsub_scalar, 2.0f, 0, false, false, false, false},
        {"div_scalar 7", UnaryOp::div_scalar, 7.0f, 0, false, false, false, false},
        {"rdiv_scalar 1", UnaryOp::rdiv_scalar, 1.0f, 0, false, false, false, false},
        {"pow_scalar 1.7", UnaryOp::pow_scalar, 1.7f, 0, true, true, false, true},
        {"pow_scalar 3", UnaryOp::pow_scalar, 3.0f, 0, false, true, false, true},
        {"clamp -0.5 0.8", UnaryOp::clamp, -0.5f, 0.8f, false, false, false, false},
        {"abs", UnaryOp::abs, 0, 0, false, false, false, false},
        {"sigmoid", UnaryOp::sigmoid, 0, 0, false, true, true, false},
        {"tanh", UnaryOp::tanh, 0, 0, false, true, true, false},
    };
    return c;
}

// The binary ops of binary_cases() as kernel ops, in the same order.
inline const std::vector<BinaryOp>& binary_kernel_ops() {
    static const std::vector<BinaryOp> c = {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::pow};
    return c;
}

// The iteration space of a kernel call writing a contiguous output of `shape` from inputs a (and b),
// which are broadcast to `shape` as the frontend does (a missing or size-1 dim gets stride 0).
inline StridedShape kernel_shape(const Shape& shape, const Tensor& a, const Tensor& b = Tensor()) {
    StridedShape s;
    s.ndim = int(shape.size());
    int64_t stride = 1;
    for (int d = s.ndim - 1; d >= 0; d--) {
        s.size[d] = shape[size_t(d)];
        s.stride[0][d] = stride;
        stride *= shape[size_t(d)];
    }
    const Tensor* in[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        if (!in[k]->defined()) continue;
        const Tensor e = in[k]->expand(shape);
        for (int d = 0; d < s.ndim; d++) s.stride[k + 1][d] = e.strides()[size_t(d)];
    }
    return s;
}

}  // namespace dyad::test
