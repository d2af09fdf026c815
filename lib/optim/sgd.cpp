// optim::Sgd: torch.optim.SGD's update. CPU parameters: one fused sgd_step kernel each. CUDA parameters:
// gathered into lists and updated by cuda::sgd_step_multi, a few launches per step instead of one per
// parameter; a list holds the parameters of one device that share every SgdParams field (first_step is
// the only one that can differ within a step).
#include <set>
#include <vector>

#include "dyad/autograd.h"
#include "dyad/ops.h"
#include "dyad/optim.h"
#include "kernels/optim.h"
#include "lib/dispatch.h"

namespace dyad::optim {

namespace {

const std::string kBufPrefix = "momentum_buffer.";

// PyTorch's checks and wording ("Invalid learning rate: -0.1"), prefixed with the class name.
void check_options(const SgdOptions& o) {
    DYAD_CHECK(o.lr >= 0.0, "Sgd: Invalid learning rate: ", o.lr);
    DYAD_CHECK(o.momentum >= 0.0, "Sgd: Invalid momentum value: ", o.momentum);
    DYAD_CHECK(o.weight_decay >= 0.0, "Sgd: Invalid weight_decay value: ", o.weight_decay);
    DYAD_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
               "Sgd: Nesterov momentum requires a momentum and zero dampening (momentum ", o.momentum, ", dampening ",
               o.dampening, ")");
}

}  // namespace

Sgd::Sgd(std::vector<std::pair<std::string, Tensor>> params, SgdOptions options)
    : params_(std::move(params)), bufs_(params_.size()), opt_(options) {
    check_options(opt_);
    std::set<std::string> names;
    for (const auto& [name, p] : params_) {
        DYAD_CHECK(p.defined(), "Sgd: parameter '", name, "' is an undefined tensor");
        DYAD_CHECK(is_floating(p.dtype()), "Sgd: parameter '", name, "' must be float32 or float64, got ",
                   dtype_name(p.dtype()));
        DYAD_CHECK(names.insert(name).second, "Sgd: parameter name '", name, "' appears twice");
    }
}

Sgd::Sgd(const std::vector<Tensor>& params, SgdOptions options)
    : Sgd(
          [&] {
              std::vector<std::pair<std::string, Tensor>> named;
              for (size_t i = 0; i < params.size(); i++) named.emplace_back(std::to_string(i), params[i]);
              return named;
          }(),
          options) {}

void Sgd::set_lr(double lr) {
    DYAD_CHECK(lr >= 0.0, "Sgd: Invalid learning rate: ", lr);
    opt_.lr = lr;
}

void Sgd::step() {
    NoGradGuard ng;
    if (opt_.check_finite) {
        // Every gradient first: a bad one throws before any parameter changes.
        for (const auto& [name, p] : params_) {
            const Tensor g = p.grad();
            DYAD_CHECK(!g.defined() || all_finite(g), "Sgd: gradient of parameter '", name, "' ", shape_str(p.shape()),
                       " has non-finite values (inf or NaN); no parameter was updated");
        }
    }
    SgdParams sp;
    sp.lr = opt_.lr;
    sp.momentum = opt_.momentum;
    sp.dampening = opt_.dampening;
    sp.weight_decay = opt_.weight_decay;
    sp.nesterov = opt_.nesterov;
    // CUDA parameters are gathered here and updated after the loop. The contiguous gradients are kept
    // alive until their kernels are queued (memory is freed in stream order after that).
    struct GpuGroup {
        int device;
        bool first_step;
        std::vector<SgdTensor> list;
    };
    std::vector<GpuGroup> gpu_groups;
    std::vector<Tensor> gpu_grads;
    // Every parameter is checked before any is updated (or gathered for a later launch).
    size_t with_grad = 0;
    for (const auto& [name, p] : params_) {
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        with_grad++;
        DYAD_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
                   "Sgd: gradient of parameter '", name, "' is ", g.str(), " but the parameter is ", p.str());
        DYAD_CHECK(p.is_contiguous(), "Sgd: parameter '", name, "' must be contiguous");
        if (p.device().is_cuda() && p.dtype() != DType::float32)
            detail::fail_cuda_dtype(__FILE__, __LINE__, "sgd_step", p.dtype());
    }
    // A step that would change nothing is a mistake (backward not run, or gradients dropped), not a no-op.
    DYAD_CHECK(params_.empty() || with_grad > 0, "Sgd: step: none of the ", params_.size(),
               " parameters has a gradient; run backward() on a loss computed from them before step()");
    for (size_t i = 0; i < params_.size(); i++) {
        const Tensor& p = params_[i].second;
        const Tensor g = p.grad();
        if (!g.defined()) continue;
        // A parameter moved or converted since its buffer was made (Module::to): the buffer follows it.
        if (bufs_[i].defined() && (bufs_[i].device() != p.device() || bufs_[i].dtype() != p.dtype()))
            bufs_[i] = bufs_[i].to(p.dtype()).to(p.device());
        const Tensor gc = g.contiguous();
        sp.first_step = false;
        if (opt_.momentum != 0.0 && !bufs_[i].defined()) {
            bufs_[i] = Tensor::zeros(p.shape(), p.dtype(), p.device());
            sp.first_step = true;
        }
        const Tensor& buf = bufs_[i];
        if (p.device().is_cuda()) {
            auto group = gpu_groups.begin();
            while (group != gpu_groups.end() &&
                   (group->device != p.device().index || group->first_step != sp.first_step))
                ++group;
            if (group == gpu_groups.end()) group = gpu_groups.insert(group, {p.device().index, sp.first_step, {}});
            group->list.push_back(
                {p.data<float>(), gc.data<float>(), opt_.momentum != 0.0 ? buf.data<float>() : nullptr, p.numel()});
            gpu_grads.push_back(gc);
            continue;
        }
        DYAD_DISPATCH_FLOAT(p.device(), p.dtype(), sgd_step, p.numel(), p.data<T>(), gc.data<T>(),
                            opt_.momentum != 0.0 ? buf.data<T>() : static_cast<T*>(nullptr), sp);
    }
    for (const GpuGroup& group : gpu_groups) {
        sp.first_step = group.first_step;
        DYAD_CUDA_CALL(Device::cuda(group.device), sgd_step_multi, group.list.data(), int(group.list.size()), sp);
    }
    steps_++;
}

void Sgd::add_replayed_steps(int64_t n) {
    DYAD_CHECK(n >= 0, "Sgd: add_replayed_steps: negative step count ", n);
    steps_ += n;
}

void Sgd::zero_grad() {
    for (auto& np : params_) np.second.zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Sgd::state() const {
    std::vector<std::pair<std::string, Tensor>> out;
    for (size_t i = 0; i < params_.size(); i++)
        if (bufs_[i].defined()) out.emplace_back(kBufPrefix + params_[i].first, bufs_[i].clone());
    return out;
}

void Sgd::load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count) {
    DYAD_CHECK(step_count >= 0, "Sgd: load_state: negative step count ", step_count);
    // Validate everything before changing anything.
    std::vector<Tensor> bufs(params_.size());
    for (const auto& [key, t] : state) {
        DYAD_CHECK(key.compare(0, kBufPrefix.size(), kBufPrefix) == 0, "Sgd: load_state: unknown state entry '", key,
                   "'");
        const std::string name = key.substr(kBufPrefix.size());
        size_t i = 0;
        while (i < params_.size() && params_[i].first != name) i++;
        DYAD_CHECK(i < params_.size(), "Sgd: load_state: '", key, "' names no parameter");
        DYAD_CHECK(t.defined(), "Sgd: load_state: '", key, "' is an undefined tensor");
        const Tensor& p = params_[i].second;
        DYAD_CHECK(t.shape() == p.shape(), "Sgd: load_state: '", key, "' has shape ", shape_str(t.shape()),
                   " but parameter '", name, "' has shape ", shape_str(p.shape()));
        DYAD_CHECK(!bufs[i].defined(), "Sgd: load_state: '", key, "' appears twice");
        NoGradGuard ng;
        bufs[i] = t.detach().to(p.dtype()).to(p.device()).clone();
    }
    bufs_ = std::move(bufs);
    steps_ = step_count;
}

}  // namespace dyad::optim
