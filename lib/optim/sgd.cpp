// optim::Sgd: torch.optim.SGD's update. CPU parameters: one fused sgd_step kernel each. CUDA parameters:
// gathered into lists and updated by cuda::sgd_step_multi, a few launches per step instead of one per
// parameter; a list holds the parameters of one device and group that share every SgdParams field
// (first_step is the only one that can differ within a group).
#include <set>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "dyad/optim.h"
#include "kernels/optim.h"
#include "lib/dispatch.h"

namespace dyad::optim {

namespace {

const std::string kBuf = "momentum_buffer";

std::vector<ParamGroup> one_group(NamedTensors params) {
    std::vector<ParamGroup> g;
    g.emplace_back(std::move(params));
    return g;
}

}  // namespace

Sgd::Sgd(NamedTensors params, SgdOptions options) : Sgd(one_group(std::move(params)), options) {}

Sgd::Sgd(const std::vector<Tensor>& params, SgdOptions options) : Sgd(name_params(params), options) {}

Sgd::Sgd(std::vector<ParamGroup> groups, SgdOptions options)
    : Optimizer(std::move(groups), options.lr, options.weight_decay, options.momentum, "Sgd"), opt_(options) {
    for (size_t gi = 0; gi < groups_.size(); gi++) {
        const Group& g = groups_[gi];
        DYAD_CHECK(g.momentum >= 0.0, "Sgd: Invalid momentum value: ", g.momentum);
        DYAD_CHECK(!opt_.nesterov || (g.momentum > 0.0 && opt_.dampening == 0.0),
                   "Sgd: Nesterov momentum requires a momentum and zero dampening (momentum ", g.momentum,
                   ", dampening ", opt_.dampening, groups_.size() > 1 ? ", group " + std::to_string(gi) : "", ")");
    }
    bufs_.resize(all_.size());
}

void Sgd::step() {
    NoGradGuard ng;
    check_gradients(opt_.check_finite);
    // CUDA parameters are gathered into lists (one per device, group and first-step flag) and updated after
    // the loop. The contiguous gradients are kept alive until their kernels are queued (memory is freed in
    // stream order after that).
    struct GpuList {
        int device;
        size_t group;
        bool first_step;
        std::vector<SgdTensor> list;
    };
    std::vector<GpuList> gpu_lists;
    std::vector<Tensor> gpu_grads;
    for (size_t gi = 0; gi < groups_.size(); gi++) {
        const Group& group = groups_[gi];
        SgdParams sp;
        sp.lr = group.lr;
        sp.momentum = group.momentum;
        sp.dampening = opt_.dampening;
        sp.weight_decay = group.weight_decay;
        sp.nesterov = opt_.nesterov;
        for (size_t i : group.index) {
            const Tensor& p = all_[i].second;
            const Tensor g = p.grad();
            if (!g.defined()) continue;
            Tensor& buf = bufs_[i];
            // A parameter moved, converted or re-laid-out since its buffer was made (Module::to): the buffer
            // follows it.
            follow_param(buf, p);
            const Tensor gc = grad_like_param(g, p);
            sp.first_step = false;
            if (sp.momentum != 0.0 && !buf.defined()) {
                buf = zeros_like_param(p);
                sp.first_step = true;
            }
            if (p.device().is_cuda()) {
                auto l = gpu_lists.begin();
                while (l != gpu_lists.end() &&
                       (l->device != p.device().index || l->group != gi || l->first_step != sp.first_step))
                    ++l;
                if (l == gpu_lists.end()) l = gpu_lists.insert(l, {p.device().index, gi, sp.first_step, {}});
                l->list.push_back(
                    {p.data<float>(), gc.data<float>(), sp.momentum != 0.0 ? buf.data<float>() : nullptr, p.numel()});
                gpu_grads.push_back(gc);
                continue;
            }
            DYAD_DISPATCH_FLOAT(p.device(), p.dtype(), sgd_step, p.numel(), p.data<T>(), gc.data<T>(),
                                sp.momentum != 0.0 ? buf.data<T>() : static_cast<T*>(nullptr), sp);
        }
    }
    for (const GpuList& l : gpu_lists) {
        const Group& group = groups_[l.group];
        SgdParams sp;
        sp.lr = group.lr;
        sp.momentum = group.momentum;
        sp.dampening = opt_.dampening;
        sp.weight_decay = group.weight_decay;
        sp.nesterov = opt_.nesterov;
        sp.first_step = l.first_step;
        DYAD_CUDA_CALL(Device::cuda(l.device), sgd_step_multi, l.list.data(), int(l.list.size()), sp);
    }
    steps_++;
}

NamedTensors Sgd::state_dict() const {
    NamedTensors out;
    for (size_t i = 0; i < all_.size(); i++)
        if (bufs_[i].defined()) out.emplace_back(kBuf + "." + all_[i].first, bufs_[i].clone());
    return out;
}

std::vector<std::string> Sgd::check_state_dict(const NamedTensors& state) const {
    std::vector<std::string> problems;
    std::set<std::string> seen;
    for (const auto& [key, t] : state) {
        std::string kind, name;
        const size_t i = split_key(key, {kBuf}, &kind, &name) ? find_param(name) : all_.size();
        if (i == all_.size()) {
            problems.push_back("'" + key + "' is not the state of a parameter (SGD keeps momentum_buffer.<name>)");
        } else if (!t.defined()) {
            problems.push_back("'" + key + "' is an undefined tensor");
        } else if (t.shape() != all_[i].second.shape()) {
            problems.push_back("'" + key + "' has shape " + shape_str(t.shape()) + " but parameter '" + name +
                               "' has shape " + shape_str(all_[i].second.shape()));
        } else if (!seen.insert(key).second) {
            problems.push_back("'" + key + "' appears twice");
        }
    }
    return problems;
}

void Sgd::restore_state(const NamedTensors& state) {
    std::vector<Tensor> bufs(all_.size());
    for (const auto& [key, t] : state) {
        std::string kind, name;
        split_key(key, {kBuf}, &kind, &name);
        const Tensor& p = all_[find_param(name)].second;
        bufs[find_param(name)] = copy_like_param(t, p);
    }
    bufs_ = std::move(bufs);
}

}  // namespace dyad::optim
