// gradcheck: backward() against central finite differences, in float64 on the naive kernels.
#include <cmath>
#include <sstream>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "lib/tensor/random.h"

namespace dyad {

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

    // Analytic: fresh leaves sharing the inputs' values, so the caller's grads are untouched.
    std::vector<Tensor> leaves;
    for (const Tensor& x : inputs) {
        Tensor l = x.clone().detach();
        l.requires_grad_(x.requires_grad());
        leaves.push_back(l);
    }
    {
        Tensor f = scalar(leaves);
        DYAD_CHECK(f.requires_grad(), "gradcheck: no input requires grad, nothing to check");
        f.backward();
    }

    GradcheckResult res;
    std::ostringstream rep;
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
            rep << "input " << i << " " << inputs[i].str() << ": " << bad << " of " << inputs[i].numel()
                << " elements off; worst at flat index " << worst_at << ": analytic " << worst_an << " vs numeric "
                << worst_num << " (|diff| " << worst << ", atol " << opt.atol << ", rtol " << opt.rtol << ")\n";
        }
    }
    res.report = res.ok ? "gradcheck passed" : rep.str();
    return res;
}

}  // namespace dyad
