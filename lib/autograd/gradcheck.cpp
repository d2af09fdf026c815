// gradcheck: backward() against central finite differences, in float64 on the naive kernels, plus two
// properties of backward itself: it is deterministic, and it is linear in the incoming gradient (zero in,
// zero out).
#include <cmath>
#include <cstring>
#include <sstream>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "lib/autograd/node.h"
#include "lib/tensor/impl.h"
#include "lib/tensor/random.h"

namespace dyad {

namespace {

// Fresh leaves sharing the inputs' values (and requires_grad), so the caller's grads are untouched.
std::vector<Tensor> fresh_leaves(const std::vector<Tensor>& inputs) {
    std::vector<Tensor> leaves;
    for (const Tensor& x : inputs) {
        Tensor l = x.clone().detach();
        l.requires_grad_(x.requires_grad());
        leaves.push_back(l);
    }
    return leaves;
}

// The gradient a leaf collected as contiguous float64 values; zeros when backward never reached it.
std::vector<double> grad_values(const Tensor& leaf) {
    const Tensor g = leaf.grad().defined() ? leaf.grad() : Tensor::zeros(leaf.shape(), DType::float64);
    return g.contiguous().to_vector<double>();
}

// The name of the op that made y (its autograd node), for reports.
std::string op_name(const Tensor& y) {
    const auto& node = y.impl() ? y.impl()->grad_fn : nullptr;
    return node && node->name && node->name[0] ? node->name : "(no op: fn returned a leaf)";
}

}  // namespace

GradcheckResult gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
    for (size_t i = 0; i < inputs.size(); i++) {
        DYAD_CHECK(inputs[i].defined() && inputs[i].dtype() == DType::float64 && inputs[i].device().is_cpu() &&
                       inputs[i].is_leaf(),
                   "gradcheck: input ", i, " must be a float64 CPU leaf tensor, got ", inputs[i].str());
    }
    CpuKernelsGuard naive(CpuKernels::naive);  // float64 runs there anyway; be explicit for composites

    // Fixed random weights: f = sum(w * fn(x)) is a scalar in which every output element matters.
    Tensor w;
    {
        NoGradGuard ng;
        const Tensor y0 = fn(inputs);
        DYAD_CHECK(y0.defined() && y0.dtype() == DType::float64, "gradcheck: fn must return a float64 tensor");
        detail::Generator gen(opt.seed);
        std::vector<double> wv(size_t(y0.numel()));
        for (double& v : wv) v = gen.uniform() * 2.0 - 1.0;
        w = Tensor::from_vector(wv, y0.shape());
    }
    auto scalar = [&](const std::vector<Tensor>& xs) { return sum(mul(fn(xs), w)); };

    // Analytic: backward of f on fresh leaves.
    const std::vector<Tensor> leaves = fresh_leaves(inputs);
    std::string op;
    {
        Tensor f = scalar(leaves);
        DYAD_CHECK(f.requires_grad(), "gradcheck: no input requires grad, nothing to check");
        f.backward();
    }

    GradcheckResult res;
    std::ostringstream rep;

    // Backward twice on the same inputs (a second graph on a second set of fresh leaves) must give the
    // same bits: no state left behind by the first pass, no order-dependent summation.
    {
        const std::vector<Tensor> again = fresh_leaves(inputs);
        sum(mul(fn(again), w)).backward();
        for (size_t i = 0; i < inputs.size(); i++) {
            if (!inputs[i].requires_grad()) continue;
            const std::vector<double> a = grad_values(leaves[i]), b = grad_values(again[i]);
            for (size_t j = 0; j < a.size(); j++) {
                if (std::memcmp(&a[j], &b[j], sizeof(double)) == 0) continue;
                res.ok = false;
                rep << "repeated backward: input " << i << " " << inputs[i].str()
                    << ": the second backward differs in its bits; first at flat index " << j << ": " << a[j]
                    << " then " << b[j] << "\n";
                break;
            }
        }
    }

    // A zero gradient of fn's output must give zero input gradients: backward is linear in it.
    {
        const std::vector<Tensor> zl = fresh_leaves(inputs);
        const Tensor y = fn(zl);
        op = op_name(y);
        y.backward(Tensor::zeros(y.shape(), DType::float64));
        for (size_t i = 0; i < inputs.size(); i++) {
            if (!inputs[i].requires_grad()) continue;
            const std::vector<double> g = grad_values(zl[i]);
            int64_t nonzero = 0, first = -1;
            for (size_t j = 0; j < g.size(); j++) {
                if (g[j] == 0.0) continue;  // -0 is zero; NaN is not
                if (first < 0) first = int64_t(j);
                nonzero++;
            }
            if (nonzero) {
                res.ok = false;
                rep << "zero grad_output: input " << i << " " << inputs[i].str() << ": " << nonzero << " of "
                    << g.size() << " gradient elements are not 0; first at flat index " << first << ": "
                    << g[size_t(first)] << "\n";
            }
        }
    }

    NoGradGuard ng;
    for (size_t i = 0; i < inputs.size(); i++) {
        if (!inputs[i].requires_grad()) continue;
        const Tensor analytic =
            leaves[i].grad().defined() ? leaves[i].grad() : Tensor::zeros(inputs[i].shape(), DType::float64);
        const std::vector<double> an = analytic.contiguous().to_vector<double>();
        // Numeric: perturb one element of a private copy at a time.
        std::vector<Tensor> xs;
        for (const Tensor& x : inputs) xs.push_back(x.clone());
        double* p = xs[i].data<double>();  // clone() is contiguous
        double worst = 0, worst_an = 0, worst_num = 0;
        int64_t worst_at = -1, bad = 0;
        for (int64_t j = 0, n = xs[i].numel(); j < n; j++) {
            const double orig = p[j];
            p[j] = orig + opt.eps;
            const double fp = scalar(xs).item();
            p[j] = orig - opt.eps;
            const double fm = scalar(xs).item();
            p[j] = orig;
            const double num = (fp - fm) / (2 * opt.eps);
            const double err = std::abs(an[size_t(j)] - num);
            const bool ok = err <= opt.atol + opt.rtol * std::abs(num);  // NaN fails too
            if (!ok) bad++;
            if (!ok && (worst_at < 0 || err > worst || std::isnan(err))) {
                worst = err, worst_at = j, worst_an = an[size_t(j)], worst_num = num;
            }
        }
        if (bad) {
            res.ok = false;
            rep << "finite differences: input " << i << " " << inputs[i].str() << ": " << bad << " of "
                << inputs[i].numel() << " elements off; worst at flat index " << worst_at << ": analytic " << worst_an
                << " vs numeric " << worst_num << " (|diff| " << worst << ", atol " << opt.atol << ", rtol " << opt.rtol
                << ")\n";
        }
    }
    res.report = res.ok ? "gradcheck passed" : "gradcheck of op " + op + " failed:\n" + rep.str();
    return res;
}

}  // namespace dyad
