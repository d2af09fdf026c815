// optim::Adam and optim::AdamW: torch.optim.Adam's update (AdamW's with decoupled weight decay). Each
// parameter keeps its own step count (a parameter without a gradient in a step does not advance), so the
// bias corrections are per parameter, as in PyTorch. CPU parameters: one fused adam_step kernel each. CUDA
// parameters: gathered into lists of one device, group and step count, and updated by
// cuda::adam_step_multi, a few launches per step.
#include <cmath>
#include <set>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/optim.h"
#include "kernels/optim.h"
#include "lib/dispatch.h"

namespace dyad::optim {

namespace {

const std::string kStep = "step", kExpAvg = "exp_avg", kExpAvgSq = "exp_avg_sq", kMaxExpAvgSq = "max_exp_avg_sq";

std::vector<ParamGroup> one_group(NamedTensors params) {
    std::vector<ParamGroup> g;
    g.emplace_back(std::move(params));
    return g;
}

// A tensor moved or converted since the state was made (Module::to) follows its parameter.
}  // namespace

Adam::Adam(NamedTensors params, AdamOptions options) : Adam(one_group(std::move(params)), options, false) {}
Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options) : Adam(std::move(groups), options, false) {}
Adam::Adam(const std::vector<Tensor>& params, AdamOptions options) : Adam(name_params(params), options) {}

Adam::Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, options.beta1, decoupled ? "AdamW" : "Adam"),
      opt_(options),
      decoupled_(decoupled) {
    // PyTorch's checks and wording.
    DYAD_CHECK(opt_.eps >= 0.0, who_, ": Invalid epsilon value: ", opt_.eps);
    for (const Group& g : groups_)
        DYAD_CHECK(g.momentum >= 0.0 && g.momentum < 1.0, who_, ": Invalid beta parameter at index 0: ", g.momentum);
    DYAD_CHECK(opt_.beta2 >= 0.0 && opt_.beta2 < 1.0, who_, ": Invalid beta parameter at index 1: ", opt_.beta2);
    state_.resize(all_.size());
}

AdamW::AdamW(NamedTensors params, AdamWOptions options) : Adam(one_group(std::move(params)), options, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options) : Adam(std::move(groups), options, true) {}
AdamW::AdamW(const std::vector<Tensor>& params, AdamWOptions options) : AdamW(name_params(params), options) {}

void Adam::step() {
    NoGradGuard ng;
    check_gradients(opt_.check_finite);
    struct GpuList {
        int device;
        size_t group;
        int64_t step;  // the parameters' own step count after this step
        std::vector<AdamTensor> list;
    };
    std::vector<GpuList> gpu_lists;
    std::vector<Tensor> gpu_grads;  // alive until the launches are queued
    auto params_for = [&](const Group& group, int64_t step) {
        AdamParams ap;
        ap.lr = group.lr;
        ap.beta1 = group.momentum;
        ap.beta2 = opt_.beta2;
        ap.eps = opt_.eps;
        ap.weight_decay = group.weight_decay;
        ap.decoupled = decoupled_;
        ap.amsgrad = opt_.amsgrad;
        ap.bias_correction1 = 1.0 - std::pow(group.momentum, double(step));
        ap.bias_correction2 = 1.0 - std::pow(opt_.beta2, double(step));
        return ap;
    };
    for (size_t gi = 0; gi < groups_.size(); gi++) {
        const Group& group = groups_[gi];
        for (size_t i : group.index) {
            const Tensor& p = all_[i].second;
            const Tensor g = p.grad();
            if (!g.defined()) continue;
            State& st = state_[i];
            if (!st.exp_avg.defined()) {
                st.exp_avg = zeros_like_param(p);
                st.exp_avg_sq = zeros_like_param(p);
                if (opt_.amsgrad) st.max_exp_avg_sq = zeros_like_param(p);
            }
            follow_param(st.exp_avg, p);
            follow_param(st.exp_avg_sq, p);
            follow_param(st.max_exp_avg_sq, p);
            st.step++;
            const Tensor gc = grad_like_param(g, p);
            if (p.device().is_cuda()) {
                auto l = gpu_lists.begin();
                while (l != gpu_lists.end() && (l->device != p.device().index || l->group != gi || l->step != st.step))
                    ++l;
                if (l == gpu_lists.end()) l = gpu_lists.insert(l, {p.device().index, gi, st.step, {}});
                l->list.push_back({p.data<float>(), gc.data<float>(), st.exp_avg.data<float>(),
                                   st.exp_avg_sq.data<float>(),
                                   opt_.amsgrad ? st.max_exp_avg_sq.data<float>() : nullptr, p.numel()});
                gpu_grads.push_back(gc);
                continue;
            }
            const AdamParams ap = params_for(group, st.step);
            DYAD_DISPATCH_FLOAT(p.device(), p.dtype(), adam_step, p.numel(), p.data<T>(), gc.data<T>(),
                                st.exp_avg.data<T>(), st.exp_avg_sq.data<T>(),
                                opt_.amsgrad ? st.max_exp_avg_sq.data<T>() : static_cast<T*>(nullptr), ap);
        }
    }
    for (const GpuList& l : gpu_lists) {
        [[maybe_unused]] const AdamParams ap = params_for(groups_[l.group], l.step);  // unused without CUDA
        DYAD_CUDA_CALL(Device::cuda(l.device), adam_step_multi, l.list.data(), int(l.list.size()), ap);
    }
    steps_++;
}

NamedTensors Adam::state_dict() const {
    NamedTensors out;
    for (size_t i = 0; i < all_.size(); i++) {
        const State& st = state_[i];
        if (!st.exp_avg.defined()) continue;
        const std::string& name = all_[i].first;
        out.emplace_back(kStep + "." + name, Tensor::full({}, double(st.step), DType::float64));
        out.emplace_back(kExpAvg + "." + name, st.exp_avg.clone());
        out.emplace_back(kExpAvgSq + "." + name, st.exp_avg_sq.clone());
        if (st.max_exp_avg_sq.defined()) out.emplace_back(kMaxExpAvgSq + "." + name, st.max_exp_avg_sq.clone());
    }
    return out;
}

std::vector<std::string> Adam::check_state_dict(const NamedTensors& state) const {
    std::vector<std::string> problems;
    std::set<std::string> seen;
    std::set<std::string> with_step, with_avg, with_sq, with_max;
    const std::vector<std::string> kinds = {kMaxExpAvgSq, kExpAvgSq, kExpAvg, kStep};  // longest prefix first
    for (const auto& [key, t] : state) {
        std::string kind, name;
        const size_t i = split_key(key, kinds, &kind, &name) ? find_param(name) : all_.size();
        if (i == all_.size()) {
            problems.push_back("'" + key + "' is not the state of a parameter (" + who_ +
                               " keeps step, exp_avg, exp_avg_sq and max_exp_avg_sq.<name>)");
            continue;
        }
        if (!seen.insert(key).second) {
            problems.push_back("'" + key + "' appears twice");
            continue;
        }
        if (!t.defined()) {
            problems.push_back("'" + key + "' is an undefined tensor");
            continue;
        }
        if (kind == kStep) {
            double v = -1.0;
            if (t.numel() == 1 && is_floating(t.dtype())) v = t.item();
            if (!(v >= 0.0 && v == std::floor(v) && v < 9.0e15))
                problems.push_back("'" + key + "' is not a step count");
            with_step.insert(name);
            continue;
        }
        if (t.shape() != all_[i].second.shape()) {
            problems.push_back("'" + key + "' has shape " + shape_str(t.shape()) + " but parameter '" + name +
                               "' has shape " + shape_str(all_[i].second.shape()));
            continue;
        }
        (kind == kExpAvg ? with_avg : kind == kExpAvgSq ? with_sq : with_max).insert(name);
    }
    // A parameter's state is whole or absent: both moments and the step, and the maximum with amsgrad.
    std::set<std::string> any;
    for (const auto* s : {&with_step, &with_avg, &with_sq, &with_max}) any.insert(s->begin(), s->end());
    for (const std::string& name : any) {
        if (!with_step.count(name) || !with_avg.count(name) || !with_sq.count(name))
            problems.push_back("the state of '" + name + "' is incomplete (it needs step, exp_avg and exp_avg_sq)");
        if (opt_.amsgrad && !with_max.count(name))
            problems.push_back("the state of '" + name + "' lacks max_exp_avg_sq, which amsgrad needs");
        if (!opt_.amsgrad && with_max.count(name))
            problems.push_back("the state of '" + name + "' has max_exp_avg_sq but amsgrad is off");
    }
    return problems;
}

void Adam::restore_state(const NamedTensors& state) {
    std::vector<State> states(all_.size());
    const std::vector<std::string> kinds = {kMaxExpAvgSq, kExpAvgSq, kExpAvg, kStep};
    for (const auto& [key, t] : state) {
        std::string kind, name;
        split_key(key, kinds, &kind, &name);
        const size_t i = find_param(name);
        const Tensor& p = all_[i].second;
        State& st = states[i];
        if (kind == kStep) {
            st.step = int64_t(t.item());
            continue;
        }
        (kind == kExpAvg ? st.exp_avg : kind == kExpAvgSq ? st.exp_avg_sq : st.max_exp_avg_sq) = copy_like_param(t, p);
    }
    state_ = std::move(states);
}

}  // namespace dyad::optim
