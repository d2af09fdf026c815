// The Optimizer interface's shared part: parameter groups and their options, the gradient checks every step
// makes first, state loading (checked, then restored), and clip_grad_norm_.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "dyad/optim.h"
#include "kernels/optim.h"
#include "lib/dispatch.h"
#include "lib/ops/common.h"

namespace dyad::optim {

NamedTensors name_params(const std::vector<Tensor>& params) {
    NamedTensors named;
    for (size_t i = 0; i < params.size(); i++) named.emplace_back(std::to_string(i), params[i]);
    return named;
}

std::vector<ParamGroup> decay_groups(const NamedTensors& params, double weight_decay) {
    NamedTensors decay, no_decay;
    for (const auto& entry : params) (entry.second.dim() >= 2 ? decay : no_decay).push_back(entry);
    return {ParamGroup(std::move(decay), {}, weight_decay), ParamGroup(std::move(no_decay), {}, 0.0)};
}

// ---------------------------------------------------------------------------- Optimizer
Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, double momentum, const char* who)
    : who_(who) {
    // PyTorch's checks and wording ("Invalid learning rate: -0.1"), prefixed with the class name.
    std::set<std::string> names;
    for (size_t gi = 0; gi < groups.size(); gi++) {
        ParamGroup& in = groups[gi];
        Group g;
        g.lr = in.lr.value_or(lr);
        g.weight_decay = in.weight_decay.value_or(weight_decay);
        g.momentum = in.momentum.value_or(momentum);
        DYAD_CHECK(g.lr >= 0.0, who, ": Invalid learning rate: ", g.lr, groups.size() > 1 ? " (group " : "",
                   groups.size() > 1 ? std::to_string(gi) + ")" : "");
        DYAD_CHECK(g.weight_decay >= 0.0, who, ": Invalid weight_decay value: ", g.weight_decay,
                   groups.size() > 1 ? " (group " + std::to_string(gi) + ")" : "");
        for (auto& [name, p] : in.params) {
            DYAD_CHECK(p.defined(), who, ": parameter '", name, "' is an undefined tensor");
            // bfloat16 values train as float32 masters behind bfloat16 copies, never as parameters themselves.
            DYAD_CHECK(p.dtype() == DType::float32 || p.dtype() == DType::float64, who, ": parameter '", name,
                       "' must be float32 or float64, got ", dtype_name(p.dtype()));
            DYAD_CHECK(names.insert(name).second, who, ": parameter name '", name, "' appears twice");
            g.index.push_back(all_.size());
            all_.emplace_back(name, p);
        }
        g.params = std::move(in.params);
        groups_.push_back(std::move(g));
    }
}

void Optimizer::zero_grad() {
    for (auto& entry : all_) entry.second.zero_grad();
}

const NamedTensors& Optimizer::group_params(size_t group) const {
    DYAD_CHECK(group < groups_.size(), who_, ": no parameter group ", group, " (", groups_.size(), " groups)");
    return groups_[group].params;
}

double Optimizer::lr(size_t group) const {
    DYAD_CHECK(group < groups_.size(), who_, ": no parameter group ", group, " (", groups_.size(), " groups)");
    return groups_[group].lr;
}

void Optimizer::set_lr(double lr) {
    for (size_t g = 0; g < groups_.size(); g++) set_lr(g, lr);
}

void Optimizer::set_lr(size_t group, double lr) {
    DYAD_CHECK(group < groups_.size(), who_, ": no parameter group ", group, " (", groups_.size(), " groups)");
    DYAD_CHECK(lr >= 0.0, who_, ": Invalid learning rate: ", lr);
    groups_[group].lr = lr;
}

double Optimizer::weight_decay(size_t group) const {
    DYAD_CHECK(group < groups_.size(), who_, ": no parameter group ", group, " (", groups_.size(), " groups)");
    return groups_[group].weight_decay;
}

double Optimizer::momentum(size_t group) const {
    DYAD_CHECK(group < groups_.size(), who_, ": no parameter group ", group, " (", groups_.size(), " groups)");
    return groups_[group].momentum;
}

void Optimizer::add_replayed_steps(int64_t n) {
    DYAD_CHECK(n >= 0, who_, ": add_replayed_steps: negative step count ", n);
    steps_ += n;
}

size_t Optimizer::check_gradients(bool check_finite) const {
    size_t with_grad = 0;
    for (const auto& [name, p] : all_) {
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        with_grad++;
        DYAD_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(), who_,
                   ": gradient of parameter '", name, "' is ", g.str(), " but the parameter is ", p.str());
        DYAD_CHECK(p.is_contiguous(p.memory_format()), who_, ": parameter '", name,
                   "' must be dense (row-major or channels_last), got strides ", shape_str(p.strides()));
        if (p.device().is_cuda() && p.dtype() != DType::float32)
            detail::fail_cuda_dtype(__FILE__, __LINE__, "optimizer step", p.dtype());
        DYAD_CHECK(!check_finite || all_finite(g), who_, ": gradient of parameter '", name, "' ", shape_str(p.shape()),
                   " has non-finite values (inf or NaN); no parameter was updated");
    }
    // A step that would change nothing is a mistake (backward not run, or gradients dropped), not a no-op.
    DYAD_CHECK(all_.empty() || with_grad > 0, who_, ": step: none of the ", all_.size(),
               " parameters has a gradient; run backward() on a loss computed from them before step()");
    return with_grad;
}

Tensor Optimizer::zeros_like_param(const Tensor& p) {
    Tensor z = detail::empty_in(p.shape(), p.dtype(), p.device(), p.memory_format());
    z.zero_();
    return z;
}

Tensor Optimizer::copy_like_param(const Tensor& t, const Tensor& p) {
    NoGradGuard ng;
    Tensor c = detail::empty_in(p.shape(), p.dtype(), p.device(), p.memory_format());
    c.copy_(t.detach());
    return c;
}

void Optimizer::follow_param(Tensor& t, const Tensor& p) {
    if (!t.defined()) return;
    NoGradGuard ng;
    if (t.device() != p.device() || t.dtype() != p.dtype()) t = t.to(p.dtype()).to(p.device());
    if (t.strides() != p.strides()) t = t.contiguous(p.memory_format());
}

Tensor Optimizer::grad_like_param(const Tensor& g, const Tensor& p) {
    NoGradGuard ng;
    return g.strides() == p.strides() ? g : g.contiguous(p.memory_format());
}

size_t Optimizer::find_param(const std::string& name) const {
    size_t i = 0;
    while (i < all_.size() && all_[i].first != name) i++;
    return i;
}

bool Optimizer::split_key(const std::string& key, const std::vector<std::string>& kinds, std::string* kind,
                          std::string* param) {
    for (const std::string& k : kinds)
        if (key.size() > k.size() + 1 && key.compare(0, k.size(), k) == 0 && key[k.size()] == '.') {
            *kind = k;
            *param = key.substr(k.size() + 1);
            return true;
        }
    return false;
}

void Optimizer::load_state_dict(const NamedTensors& state, int64_t step_count) {
    std::vector<std::string> problems = check_state_dict(state);
    if (step_count < 0) problems.push_back("negative step count " + std::to_string(step_count));
    std::string msg;
    for (const std::string& p : problems) msg += (msg.empty() ? "" : "; ") + p;
    DYAD_CHECK(problems.empty(), who_, ": load_state_dict: the state does not fit, nothing was changed: ", msg);
    NoGradGuard ng;
    restore_state(state);
    steps_ = step_count;
}

// ---------------------------------------------------------------------------- clip_grad_norm_
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type) {
    DYAD_CHECK(max_norm >= 0.0 && std::isfinite(max_norm), "clip_grad_norm_: max_norm must be finite and >= 0, got ",
               max_norm);
    const bool inf_norm = std::isinf(norm_type) && norm_type > 0;
    DYAD_CHECK(inf_norm || norm_type == 2.0, "clip_grad_norm_: norm_type must be 2 or infinity, got ", norm_type);
    NoGradGuard ng;
    std::vector<Tensor> grads;
    for (const Tensor& p : params) {
        DYAD_CHECK(p.defined(), "clip_grad_norm_: a parameter is an undefined tensor");
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        DYAD_CHECK(is_floating(g.dtype()), "clip_grad_norm_: gradient ", g.str(), " is not floating");
        DYAD_CHECK(g.is_contiguous(g.memory_format()), "clip_grad_norm_: gradient ", g.str(),
                   " must be dense (row-major or channels_last)");
        if (!grads.empty())
            DYAD_CHECK(g.device() == grads[0].device() && g.dtype() == grads[0].dtype(),
                       "clip_grad_norm_: gradients must share one device and dtype, got ", grads[0].str(), " and ",
                       g.str());
        grads.push_back(g);
    }
    if (grads.empty()) return Tensor::zeros({});
    const Device dev = grads[0].device();
    const DType dt = grads[0].dtype();
    Tensor total = Tensor::empty({}, dt, dev);
    if (dev.is_cuda()) {
        if (dt != DType::float32) detail::fail_cuda_dtype(__FILE__, __LINE__, "clip_grad_norm_", dt);
        std::vector<GradTensor> list;
        for (const Tensor& g : grads) list.push_back({g.data<float>(), g.numel()});
        DYAD_CUDA_CALL(dev, grad_norm_multi, list.data(), int(list.size()), total.data<float>(), inf_norm);
        DYAD_CUDA_CALL(dev, grad_scale_multi, list.data(), int(list.size()), total.data<float>(), max_norm);
        return total;
    }
    // CPU: each gradient's part in double, combined in order, the norm rounded to the gradients' dtype once.
    double acc = 0.0;
    for (const Tensor& g : grads) {
        double part = 0.0;
        if (dt == DType::float64)
            part = naive::grad_norm_part<double>(g.numel(), g.data<double>(), inf_norm);
        else if (detail::kernel_set(dev) == detail::KernelSet::naive)
            part = naive::grad_norm_part<float>(g.numel(), g.data<float>(), inf_norm);
        else
            part = omp::grad_norm_part(g.numel(), g.data<float>(), inf_norm);
        if (!inf_norm)
            acc += part;
        else if (std::isnan(part) || part > acc)
            acc = std::isnan(acc) ? acc : part;
    }
    const double norm = inf_norm ? acc : std::sqrt(acc);
    total.fill_(norm);
    // clip_coef = max_norm / (total + 1e-6), clamped to 1, in the gradients' dtype (PyTorch's order).
    const double t = total.item();
    const double coef = dt == DType::float32 ? double(float(max_norm) / (float(t) + 1e-6f)) : max_norm / (t + 1e-6);
    if (coef < 1.0)
        for (Tensor& g : grads) g.mul_(coef);
    return total;
}

Tensor clip_grad_norm_(const NamedTensors& params, double max_norm, double norm_type) {
    std::vector<Tensor> plain;
    for (const auto& entry : params) plain.push_back(entry.second);
    return clip_grad_norm_(plain, max_norm, norm_type);
}

}  // namespace dyad::optim
