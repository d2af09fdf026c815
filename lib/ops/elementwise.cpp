// Elementwise op frontends: checks, broadcasting, dispatch, and the backward rules next to each forward.
#include "kernels/elementwise.h"

#include <cmath>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"
#include "lib/tensor/impl.h"

namespace dyad {

using autograd::GradSink;
using detail::accumulate;
using detail::sum_to;

// ---------------------------------------------------------------------------- raw forwards (no autograd)
static const char* binary_name(BinaryOp op) {
    switch (op) {
        case BinaryOp::add:
            return "add";
        case BinaryOp::sub:
            return "sub";
        case BinaryOp::mul:
            return "mul";
        case BinaryOp::div:
            return "div";
        case BinaryOp::pow:
            return "pow";
    }
    return "?";
}

static Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b) {
    const char* name = binary_name(op);
    detail::check_same(name, a, b);
    detail::check_floating(name, a);
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    // The result takes the layout of the first operand that has the result's whole shape.
    const MemoryFormat format = a.shape() == shape   ? a.memory_format()
                                : b.shape() == shape ? b.memory_format()
                                                     : MemoryFormat::contiguous;
    Tensor out = detail::empty_in(shape, a.dtype(), a.device(), format);
    const StridedShape s = detail::make_strided(
        shape, {out.strides(), detail::broadcast_strides(a, shape), detail::broadcast_strides(b, shape)}, name);
    DYAD_DISPATCH_FLOAT_BF16(a.device(), a.dtype(), binary_fwd, op, out.data<T>(), a.data<T>(), b.data<T>(), s);
    return out;
}

static Tensor unary_raw(UnaryOp op, const char* name, const Tensor& x, double p0 = 0, double p1 = 0) {
    detail::check_floating(name, x);
    Tensor out = detail::empty_in(x.shape(), x.dtype(), x.device(), x.memory_format());
    const StridedShape s = detail::make_strided(x.shape(), {out.strides(), x.strides()}, name);
    DYAD_DISPATCH_FLOAT_BF16(x.device(), x.dtype(), unary_fwd, op, out.data<T>(), x.data<T>(), s, C(p0), C(p1));
    return out;
}

// ---------------------------------------------------------------------------- binary
// Backward rules: the full-size gradient of each operand is reduced to its shape (sum_to) and added
// into the sink. They use the raw forwards, so nothing is recorded.
Tensor add(const Tensor& a, const Tensor& b) {
    Tensor y = binary_raw(BinaryOp::add, a, b);
    autograd::record("add", {a, b}, y, [sa = a.shape(), sb = b.shape()](const Tensor& dy, GradSink& g) {
        if (g.needs(0)) accumulate(g.grad(0), sum_to(dy, sa));
        if (g.needs(1)) accumulate(g.grad(1), sum_to(dy, sb));
    });
    autograd::mark_format_aware(y);
    return y;
}

Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor y = binary_raw(BinaryOp::sub, a, b);
    autograd::record("sub", {a, b}, y, [sa = a.shape(), sb = b.shape()](const Tensor& dy, GradSink& g) {
        if (g.needs(0)) accumulate(g.grad(0), sum_to(dy, sa));
        if (g.needs(1)) accumulate(g.grad(1), sum_to(unary_raw(UnaryOp::neg, "sub", dy), sb));
    });
    autograd::mark_format_aware(y);
    return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor y = binary_raw(BinaryOp::mul, a, b);
    if (autograd::needs_grad({a, b})) {
        autograd::record("mul", {a, b}, y,
                         [ad = a.detach(), bd = b.detach()](const Tensor& dy, GradSink& g) {
                             if (g.needs(0))
                                 accumulate(g.grad(0), sum_to(binary_raw(BinaryOp::mul, dy, bd), ad.shape()));
                             if (g.needs(1))
                                 accumulate(g.grad(1), sum_to(binary_raw(BinaryOp::mul, dy, ad), bd.shape()));
                         },
                         {a, b});
        autograd::mark_format_aware(y);
    }
    return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
    Tensor y = binary_raw(BinaryOp::div, a, b);
    if (autograd::needs_grad({a, b})) {
        // d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b.
        autograd::record(
            "div", {a, b}, y,
            [bd = b.detach(), yd = y.detach(), sa = a.shape()](const Tensor& dy, GradSink& g) {
                const Tensor dyb = binary_raw(BinaryOp::div, dy, bd);
                if (g.needs(0)) accumulate(g.grad(0), sum_to(dyb, sa));
                if (g.needs(1))
                    accumulate(g.grad(1),
                               sum_to(unary_raw(UnaryOp::neg, "div", binary_raw(BinaryOp::mul, dyb, yd)), bd.shape()));
            },
            {b, y});
        autograd::mark_format_aware(y);
    }
    return y;
}

Tensor pow(const Tensor& a, const Tensor& b) {
    Tensor y = binary_raw(BinaryOp::pow, a, b);
    if (autograd::needs_grad({a, b})) {
        // d(a^b)/da = b * a^(b-1) = b * y / a would fail at a == 0; use a^(b-1) directly.
        // d(a^b)/db = y * log(a).
        autograd::record(
            "pow", {a, b}, y,
            [ad = a.detach(), bd = b.detach(), yd = y.detach()](const Tensor& dy, GradSink& g) {
                if (g.needs(0)) {
                    const Tensor am1 = binary_raw(BinaryOp::pow, ad, unary_raw(UnaryOp::add_scalar, "pow", bd, -1.0));
                    const Tensor ga = binary_raw(BinaryOp::mul, dy, binary_raw(BinaryOp::mul, bd, am1));
                    accumulate(g.grad(0), sum_to(ga, ad.shape()));
                }
                if (g.needs(1)) {
                    const Tensor gb = binary_raw(BinaryOp::mul, dy,
                                                 binary_raw(BinaryOp::mul, yd, unary_raw(UnaryOp::log, "pow", ad)));
                    accumulate(g.grad(1), sum_to(gb, bd.shape()));
                }
            },
            {a, b, y});
        autograd::mark_format_aware(y);
    }
    return y;
}

// ---------------------------------------------------------------------------- unary
// Backward: one fused kernel, dx += dy * f'(x) (using y = f(x) where cheaper), on contiguous data.
static Tensor unary(UnaryOp op, const char* name, const Tensor& x, double p0 = 0, double p1 = 0) {
    Tensor y = unary_raw(op, name, x, p0, p1);
    if (autograd::needs_grad({x})) {
        autograd::record(name, {x}, y,
                         [op, p0, p1, xd = x.detach(), yd = y.detach()](const Tensor& dy, GradSink& g) {
                             // The kernel is flat: every operand in dx's layout (y and dy are already in it
                             // when x was dense; a strided x was read into a row-major y).
                             const Tensor& dx = g.grad(0);
                             const MemoryFormat f = dx.memory_format();
                             const Tensor xc = xd.contiguous(f), yc = yd.contiguous(f), dyc = dy.contiguous(f);
                             DYAD_DISPATCH_FLOAT_BF16(dx.device(), dx.dtype(), unary_bwd, op, dx.data<T>(),
                                                      dyc.data<T>(), xc.data<T>(), yc.data<T>(), dx.numel(), C(p0),
                                                      C(p1));
                         },
                         {x, y});
        autograd::mark_format_aware(y);
    }
    return y;
}

Tensor add(const Tensor& a, double s) { return unary(UnaryOp::add_scalar, "add", a, s); }
Tensor sub(const Tensor& a, double s) { return unary(UnaryOp::add_scalar, "sub", a, -s); }
Tensor sub(double s, const Tensor& a) { return unary(UnaryOp::rsub_scalar, "sub", a, s); }
Tensor mul(const Tensor& a, double s) { return unary(UnaryOp::mul_scalar, "mul", a, s); }
Tensor div(const Tensor& a, double s) { return unary(UnaryOp::div_scalar, "div", a, s); }
Tensor div(double s, const Tensor& a) { return unary(UnaryOp::rdiv_scalar, "div", a, s); }
Tensor pow(const Tensor& a, double e) { return unary(UnaryOp::pow_scalar, "pow", a, e); }
Tensor neg(const Tensor& a) { return unary(UnaryOp::neg, "neg", a); }
Tensor exp(const Tensor& a) { return unary(UnaryOp::exp, "exp", a); }
Tensor log(const Tensor& a) { return unary(UnaryOp::log, "log", a); }
Tensor sqrt(const Tensor& a) { return unary(UnaryOp::sqrt, "sqrt", a); }
Tensor clamp(const Tensor& a, double lo, double hi) {
    DYAD_CHECK(lo <= hi, "clamp: lo (", lo, ") must not exceed hi (", hi, ")");
    return unary(UnaryOp::clamp, "clamp", a, lo, hi);
}
Tensor abs(const Tensor& a) { return unary(UnaryOp::abs, "abs", a); }
Tensor sigmoid(const Tensor& a) { return unary(UnaryOp::sigmoid, "sigmoid", a); }
Tensor tanh(const Tensor& a) { return unary(UnaryOp::tanh, "tanh", a); }

// ---------------------------------------------------------------------------- comparisons
namespace {

// The dtype two compared tensors meet in: the wider floating type if either is floating, else the wider
// integer type (PyTorch's promotion, restricted to dyad's six dtypes).
DType promote(DType a, DType b) {
    auto rank = [](DType t) {
        switch (t) {
            case DType::uint8:
                return 0;
            case DType::int32:
                return 1;
            case DType::int64:
                return 2;
            case DType::bfloat16:
                return 3;
            case DType::float32:
                return 4;
            case DType::float64:
                return 5;
        }
        return 0;
    };
    return rank(a) >= rank(b) ? a : b;
}

Tensor compare(CompareOp op, const char* name, const Tensor& a, const Tensor& b) {
    detail::check_defined(name, a, "a");
    detail::check_defined(name, b, "b");
    DYAD_CHECK(a.device() == b.device(), name, ": tensors are on different devices (", a.device().str(), " ",
               shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()), ")");
    const Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
    const DType dt = promote(a.dtype(), b.dtype());
    NoGradGuard ng;  // the conversions below are not part of any graph (comparisons have no gradient)
    const Tensor ac = a.detach().to(dt), bc = b.detach().to(dt);
    Tensor out = Tensor::empty(shape, DType::uint8, a.device());
    const StridedShape s = detail::make_strided(
        shape, {out.strides(), detail::broadcast_strides(ac, shape), detail::broadcast_strides(bc, shape)}, name);
    detail::visit_dtype(dt, [&](auto t) {
        using T = decltype(t);
        DYAD_DISPATCH_TEMPLATE(a.device(), compare_fwd<T>, op, out.data<uint8_t>(), ac.data<T>(), bc.data<T>(), s);
    });
    return out;
}

// A scalar as a 0-d tensor to compare with a: in a's dtype when a is floating (PyTorch converts the scalar
// to the tensor's dtype) or when the scalar is an integer that a's integer dtype holds; otherwise in
// float64, so that comparing integers with 2.5 or with 300 (for uint8) is exact.
Tensor scalar_like(const char* name, const Tensor& a, double s) {
    detail::check_defined(name, a, "a");
    bool fits = is_floating(a.dtype());
    if (!fits && std::floor(s) == s) {
        const double lo = a.dtype() == DType::uint8   ? 0.0
                          : a.dtype() == DType::int32 ? -2147483648.0
                                                      : -9.2233720368547758e18;
        const double hi = a.dtype() == DType::uint8   ? 255.0
                          : a.dtype() == DType::int32 ? 2147483647.0
                                                      : 9.2233720368547748e18;
        fits = s >= lo && s <= hi;
    }
    return Tensor::full({}, s, fits ? a.dtype() : DType::float64, a.device());
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) { return compare(CompareOp::eq, "eq", a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare(CompareOp::ne, "ne", a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare(CompareOp::lt, "lt", a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare(CompareOp::le, "le", a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare(CompareOp::gt, "gt", a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare(CompareOp::ge, "ge", a, b); }
Tensor eq(const Tensor& a, double s) { return compare(CompareOp::eq, "eq", a, scalar_like("eq", a, s)); }
Tensor ne(const Tensor& a, double s) { return compare(CompareOp::ne, "ne", a, scalar_like("ne", a, s)); }
Tensor lt(const Tensor& a, double s) { return compare(CompareOp::lt, "lt", a, scalar_like("lt", a, s)); }
Tensor le(const Tensor& a, double s) { return compare(CompareOp::le, "le", a, scalar_like("le", a, s)); }
Tensor gt(const Tensor& a, double s) { return compare(CompareOp::gt, "gt", a, scalar_like("gt", a, s)); }
Tensor ge(const Tensor& a, double s) { return compare(CompareOp::ge, "ge", a, scalar_like("ge", a, s)); }

// ---------------------------------------------------------------------------- where
namespace {

// out = c ? a : b over `shape`, where c is uint8, contiguous and of `shape` (the kernel reads it at the
// output's offsets), and a, b broadcast to `shape`. No autograd.
Tensor where_raw(const Tensor& c, const Tensor& a, const Tensor& b, const Shape& shape) {
    Tensor out = Tensor::empty(shape, a.dtype(), a.device());
    const StridedShape s = detail::make_strided(
        shape, {out.strides(), detail::broadcast_strides(a, shape), detail::broadcast_strides(b, shape)}, "where");
    detail::visit_dtype(a.dtype(), [&](auto t) {
        using T = decltype(t);
        DYAD_DISPATCH_TEMPLATE(a.device(), where_fwd<T>, out.data<T>(), c.data<uint8_t>(), a.data<T>(), b.data<T>(), s);
    });
    return out;
}

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    const char* op = "where";
    detail::check_defined(op, cond, "cond");
    detail::check_same(op, a, b);
    DYAD_CHECK(cond.dtype() == DType::uint8, op, ": cond must be uint8 (a mask, as the comparisons make), got ",
               dtype_name(cond.dtype()), " ", shape_str(cond.shape()));
    DYAD_CHECK(cond.device() == a.device(), op, ": cond on ", cond.device().str(), " but a and b on ",
               a.device().str());
    const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), op), b.shape(), op);
    Tensor c;
    {
        NoGradGuard ng;
        c = cond.shape() == shape && cond.is_contiguous() ? cond : cond.expand(shape).contiguous();
    }
    Tensor y = where_raw(c, a, b, shape);
    if (is_floating(a.dtype()) && autograd::needs_grad({a, b})) {
        // dy goes to a where cond holds and to b elsewhere, each then summed over its broadcast dims.
        autograd::record(op, {a, b}, y,
                         [c, shape, sa = a.shape(), sb = b.shape()](const Tensor& dy, GradSink& g) {
                             const Tensor zero = Tensor::zeros({}, dy.dtype(), dy.device());
                             if (g.needs(0)) accumulate(g.grad(0), sum_to(where_raw(c, dy, zero, shape), sa));
                             if (g.needs(1)) accumulate(g.grad(1), sum_to(where_raw(c, zero, dy, shape), sb));
                         },
                         {c});
        autograd::mark_format_aware(y);
    }
    return y;
}

Tensor where(const Tensor& cond, const Tensor& a, double b) {
    detail::check_defined("where", a, "a");
    return where(cond, a, Tensor::full({}, b, a.dtype(), a.device()));
}

Tensor where(const Tensor& cond, double a, const Tensor& b) {
    detail::check_defined("where", b, "b");
    return where(cond, Tensor::full({}, a, b.dtype(), b.device()), b);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
Tensor operator-(double s, const Tensor& a) { return sub(s, a); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return div(a, s); }
Tensor operator/(double s, const Tensor& a) { return div(s, a); }
Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace dyad
