// Synchronised batch normalisation: the statistics of the whole global batch, over every rank.
//
// Forward: each rank sums x and x^2 per channel over its (N, H, W) in float64, one all-reduce adds the
// ranks' sums and counts, and every rank normalises with the global mean and biased variance. Backward:
// the gradient reaching x_r depends on every rank's outputs through the statistics, so each rank sums
// dy and dy * xhat per channel, one all-reduce adds them, and
//     dx = weight * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
// with the global sums and count M. The weight's and bias's gradients stay local sums (sum(dy * xhat)
// and sum(dy) over this rank's elements): DataParallel averages them with every other gradient, which
// gives the gradient of the mean of the ranks' losses. Both all-reduces run in the same place of every
// rank's forward and backward, in the order the ranks' graphs share.
#include <cmath>
#include <memory>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/dist.h"
#include "dyad/error.h"
#include "dyad/ops.h"

namespace dyad::dist {

namespace {

// The statistics one forward computed, for its backward.
struct Stats {
    Tensor mean, invstd;  // (1, C, 1, 1) in x's dtype
    double count = 0;     // M, over every rank
};

// Per-channel sums over (N, H, W), in float64 on the CPU (what all_reduce takes).
Tensor channel_sums(const Tensor& t) { return sum(t.to(DType::float64), {0, 2, 3}).to(Device::cpu()); }

}  // namespace

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                         const Tensor& bias, double momentum, double eps) {
    DYAD_CHECK(x.defined() && x.dim() == 4, "sync_batch_norm2d: x must be (N, C, H, W), got ",
               x.defined() ? shape_str(x.shape()) : std::string("undefined"));
    DYAD_CHECK(is_floating(x.dtype()), "sync_batch_norm2d: x must be floating, got ", dtype_name(x.dtype()));
    const int64_t c = x.size(1);
    for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
        DYAD_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == c), "sync_batch_norm2d: per-channel tensor ",
                   t->str(), " does not match the ", c, " channels of x ", shape_str(x.shape()));
    DYAD_CHECK(weight.defined() == bias.defined(), "sync_batch_norm2d: weight and bias must both be given or both not");
    DYAD_CHECK(running_mean.defined() == running_var.defined(),
               "sync_batch_norm2d: running_mean and running_var must both be given or both not");

    auto stats = std::make_shared<Stats>();
    const bool affine = weight.defined();
    autograd::CustomOp op;
    op.name = "sync_batch_norm2d";
    op.forward = [=](const std::vector<Tensor>& in) {
        const Tensor& xi = in[0];
        const double local = double(xi.numel() / c);
        Tensor sums = cat({channel_sums(xi), channel_sums(mul(xi, xi)), Tensor::full({1}, local, DType::float64)});
        all_reduce(sums);
        const double m = sums.data<double>()[2 * c];
        DYAD_CHECK(m > 1, "sync_batch_norm2d: the global batch has ", m,
                   " values per channel; batch statistics need more than 1");
        Tensor mean = div(sums.slice(0, 0, c), m);
        Tensor var = relu(sub(div(sums.slice(0, c, 2 * c), m), mul(mean, mean)));  // >= 0 despite rounding
        if (running_mean.defined()) {
            NoGradGuard ng;
            Tensor rm = running_mean, rv = running_var;
            rm.mul_(1.0 - momentum).add_(mean.to(rm.device()).to(rm.dtype()), momentum);
            rv.mul_(1.0 - momentum).add_(mul(var, m / (m - 1)).to(rv.device()).to(rv.dtype()), momentum);
        }
        const Shape bc{1, c, 1, 1};
        stats->count = m;
        stats->mean = mean.reshape(bc).to(xi.device()).to(xi.dtype());
        stats->invstd = div(1.0, sqrt(add(var, eps))).reshape(bc).to(xi.device()).to(xi.dtype());
        Tensor y = mul(sub(xi, stats->mean), stats->invstd);
        if (affine) y = add(mul(y, in[1].reshape(bc)), in[2].reshape(bc));
        return y;
    };
    op.backward = [=](const Tensor& dy, const std::vector<Tensor>& in, const Tensor&) {
        const Tensor& xi = in[0];
        const Shape bc{1, c, 1, 1};
        const Tensor xhat = mul(sub(xi, stats->mean), stats->invstd);
        const Tensor local_dy = channel_sums(dy), local_dy_xhat = channel_sums(mul(dy, xhat));
        Tensor sums = cat({local_dy, local_dy_xhat});
        all_reduce(sums);
        const double m = stats->count;
        const Tensor mean_dy = div(sums.slice(0, 0, c), m).reshape(bc).to(xi.device()).to(xi.dtype());
        const Tensor mean_dy_xhat = div(sums.slice(0, c, 2 * c), m).reshape(bc).to(xi.device()).to(xi.dtype());
        Tensor scale = stats->invstd;
        if (affine) scale = mul(scale, in[1].reshape(bc));
        std::vector<Tensor> grads{mul(sub(sub(dy, mean_dy), mul(xhat, mean_dy_xhat)), scale)};
        if (affine) {
            grads.push_back(local_dy_xhat.to(in[1].device()).to(in[1].dtype()));
            grads.push_back(local_dy.to(in[2].device()).to(in[2].dtype()));
        }
        return grads;
    };
    return affine ? autograd::apply(op, {x, weight, bias}) : autograd::apply(op, {x});
}

void convert_sync_batchnorm(nn::Module& module, bool on) {
    for (auto& [name, m] : module.named_modules())
        if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(m)) bn->set_sync(on);
}

}  // namespace dyad::dist
