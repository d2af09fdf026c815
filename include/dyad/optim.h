// Optimizers behind one interface (torch.optim's update rules): SGD with momentum, Nesterov and weight
// decay; Adam and AdamW; parameter groups with options of their own; gradient clipping; learning-rate
// schedules that drive any optimizer.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dyad/export.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// A group of parameters with options of its own, like an entry of PyTorch's param_groups. An unset option
// takes the optimizer's. `momentum` is SGD's momentum and Adam's beta1.
struct ParamGroup {
    NamedTensors params;
    std::optional<double> lr, weight_decay, momentum;
    ParamGroup() = default;
    ParamGroup(NamedTensors p, std::optional<double> lr_ = {}, std::optional<double> weight_decay_ = {},
               std::optional<double> momentum_ = {})
        : params(std::move(p)), lr(lr_), weight_decay(weight_decay_), momentum(momentum_) {}
};

// The usual exemption from weight decay: parameters of rank >= 2 (convolution and linear weights) in a
// group with `weight_decay`, the others (biases, batch-norm weights and biases) in a group with 0. Either
// group may be empty.
std::vector<ParamGroup> decay_groups(const NamedTensors& params, double weight_decay);

// The interface every optimizer implements; schedulers and checkpoints take it.
//
// Parameters are named (names key the state in checkpoints and must be unique over all groups); unnamed
// ones (a std::vector<Tensor>) are named "0", "1", ... A parameter without a gradient is skipped by step(),
// as in PyTorch, but a step in which no parameter has one throws: nothing would change (backward was not
// run). Parameters may move or change dtype after the optimizer is built (Module::to keeps their handles):
// the optimizer's state follows them. step() runs without recording on the tape; on a GPU it launches a
// few fused kernels for all parameters and never waits for the GPU.
class Optimizer {
public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    virtual void step() = 0;
    void zero_grad();  // every parameter's grad() becomes undefined
    // "SGD", "Adam" or "AdamW": the checkpoint records it, and loading checks it.
    virtual std::string name() const = 0;

    size_t num_groups() const { return groups_.size(); }
    const NamedTensors& group_params(size_t group) const;
    const NamedTensors& params() const { return all_; }  // every parameter, group by group
    double lr(size_t group = 0) const;
    void set_lr(double lr);  // every group
    void set_lr(size_t group, double lr);
    double weight_decay(size_t group = 0) const;
    double momentum(size_t group = 0) const;

    int64_t step_count() const { return steps_; }
    // Steps a captured graph replayed (the host-side count does not see them): a training step run through
    // CapturedStep (dyad/capture.h) calls step() on the host only when it runs eagerly or is captured; after
    // a call that replayed the graph (last_replayed()), call add_replayed_steps(1).
    void add_replayed_steps(int64_t n);

    // Per-parameter state for checkpoints, named "<kind>.<parameter>" as PyTorch names its state
    // ("momentum_buffer.fc.weight", "exp_avg.fc.weight", ...): copies, on the parameters' devices.
    virtual NamedTensors state_dict() const = 0;
    // What would be wrong with loading `state` (unknown kinds or parameters, shapes, duplicates); empty
    // when it fits. load_state_dict checks this first and changes nothing when anything is wrong.
    virtual std::vector<std::string> check_state_dict(const NamedTensors& state) const = 0;
    // Restores state_dict() output and the step count. Entries are converted to their parameter's dtype
    // and device; a missing entry means "not started" for that parameter.
    void load_state_dict(const NamedTensors& state, int64_t step_count);

protected:
    struct Group {
        NamedTensors params;
        std::vector<size_t> index;  // each parameter's position in all_
        double lr = 0, weight_decay = 0, momentum = 0;
    };
    // Checks the groups (defined floating tensors, unique names, options >= 0) and fills groups_ and all_.
    Optimizer(std::vector<ParamGroup> groups, double lr, double weight_decay, double momentum, const char* who);
    // Checks every gradient before anything changes: its shape, dtype and device match the parameter's,
    // parameters are dense (row-major or channels_last), GPU parameters are float32, and with check_finite
    // every gradient is finite; throws when no parameter has a gradient. Returns the number that have one.
    size_t check_gradients(bool check_finite) const;
    // The update kernels run flat over a parameter, its gradient and its state, so all three share the
    // parameter's layout: zeros laid out like p; t moved, converted or re-laid-out to follow p (after
    // Module::to); g in p's layout (itself when it already is).
    static Tensor zeros_like_param(const Tensor& p);
    static Tensor copy_like_param(const Tensor& t, const Tensor& p);  // t (p's shape) as p's dtype, device, layout
    static void follow_param(Tensor& t, const Tensor& p);
    static Tensor grad_like_param(const Tensor& g, const Tensor& p);
    virtual void restore_state(const NamedTensors& state) = 0;  // after check_state_dict passed
    // The parameter named `name` (an index into all_), or all_.size().
    size_t find_param(const std::string& name) const;
    // Splits "<kind>.<parameter>" for one of `kinds`; false when the key has none of them.
    static bool split_key(const std::string& key, const std::vector<std::string>& kinds, std::string* kind,
                          std::string* param);

    std::string who_;  // the class name used in error messages
    std::vector<Group> groups_;
    NamedTensors all_;
    int64_t steps_ = 0;
};

NamedTensors name_params(const std::vector<Tensor>& params);  // "0", "1", ...

// ---------------------------------------------------------------------------- SGD
struct SgdOptions {
    double lr = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;  // needs momentum > 0 and dampening == 0 in every group, as in PyTorch
    // Check every gradient before updating anything: a non-finite value throws a dyad::Error naming the
    // parameter, and no parameter is changed.
    bool check_finite = false;
};

// torch.optim.SGD: g = grad + weight_decay * param; with momentum, buf = momentum * buf + (1 - dampening)
// * g (buf = g on its first step) and g = nesterov ? g + momentum * buf : buf; param -= lr * g. One fused
// kernel per parameter on the CPU; on a GPU one launch per up to 48 parameters. State: momentum_buffer.
class Sgd : public Optimizer {
public:
    Sgd(NamedTensors params, SgdOptions options);
    Sgd(std::vector<ParamGroup> groups, SgdOptions options);
    Sgd(const std::vector<Tensor>& params, SgdOptions options);
    void step() override;
    std::string name() const override { return "SGD"; }
    const SgdOptions& options() const { return opt_; }
    NamedTensors state_dict() const override;
    std::vector<std::string> check_state_dict(const NamedTensors& state) const override;

private:
    void restore_state(const NamedTensors& state) override;
    std::vector<Tensor> bufs_;  // by position in params(); undefined until a parameter's first step
    SgdOptions opt_;
};

// ---------------------------------------------------------------------------- Adam and AdamW
struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9, beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0.0;
    bool amsgrad = false;       // keep the maximum of the second moments (Reddi et al.)
    bool check_finite = false;  // as in SgdOptions
};
// AdamW's defaults differ from Adam's in the weight decay only (PyTorch: 1e-2).
struct AdamWOptions : AdamOptions {
    AdamWOptions() { weight_decay = 1e-2; }
};

// torch.optim.Adam, per element, with t the parameter's own step count (from 1):
//   Adam:  g = grad + weight_decay * param          AdamW: param *= 1 - lr * weight_decay; g = grad
//   m = m + (1 - beta1) * (g - m);  v = beta2 * v + (1 - beta2) * g * g;  (amsgrad: vmax = max(vmax, v))
//   param -= lr / (1 - beta1^t) * m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps)
// One fused kernel per parameter (naive, omp) or per up to 24 parameters (CUDA). A group's `momentum`
// is its beta1. State: step (float64 scalar), exp_avg, exp_avg_sq, and max_exp_avg_sq with amsgrad.
class Adam : public Optimizer {
public:
    Adam(NamedTensors params, AdamOptions options = {});
    Adam(std::vector<ParamGroup> groups, AdamOptions options = {});
    Adam(const std::vector<Tensor>& params, AdamOptions options = {});
    void step() override;
    std::string name() const override { return decoupled_ ? "AdamW" : "Adam"; }
    const AdamOptions& options() const { return opt_; }
    NamedTensors state_dict() const override;
    std::vector<std::string> check_state_dict(const NamedTensors& state) const override;

protected:
    Adam(std::vector<ParamGroup> groups, AdamOptions options, bool decoupled);

private:
    void restore_state(const NamedTensors& state) override;
    struct State {
        int64_t step = 0;
        Tensor exp_avg, exp_avg_sq, max_exp_avg_sq;
    };
    std::vector<State> state_;  // by position in params()
    AdamOptions opt_;
    bool decoupled_;
};

// Adam with decoupled weight decay (Loshchilov and Hutter), torch.optim.AdamW.
class AdamW : public Adam {
public:
    AdamW(NamedTensors params, AdamWOptions options = {});
    AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});
    AdamW(const std::vector<Tensor>& params, AdamWOptions options = {});
};

// ---------------------------------------------------------------------------- gradient clipping
// Scales every defined gradient by min(1, max_norm / (total + 1e-6)), where total is the norm of all the
// gradients together (norm_type 2, or infinity for the largest absolute value), like
// torch.nn.utils.clip_grad_norm_. Returns total as a one-element tensor on the gradients' device: on a GPU
// the norm is one fused reduction over every gradient and the scaling happens there, with no wait for the
// GPU (read it with item() only when needed). Gradients must share one device and dtype; none defined
// returns 0.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);
Tensor clip_grad_norm_(const NamedTensors& params, double max_norm, double norm_type = 2.0);

// ---------------------------------------------------------------------------- learning-rate schedules
// Construction records each group's lr as its base rate and sets the epoch-0 rates; step() advances one
// epoch (or one iteration, as the caller chooses) and sets every group's rate from its own base rate.
class LrScheduler {
public:
    explicit LrScheduler(Optimizer& opt);
    virtual ~LrScheduler() = default;
    virtual void step();
    int64_t last_epoch() const { return epoch_; }
    double base_lr(size_t group = 0) const { return base_lrs_.at(group); }
    // Rate of group 0 at `epoch` (closed form); rate() gives any group's.
    double lr_at(int64_t epoch) const { return rate(base_lrs_.at(0), epoch); }
    virtual double rate(double base_lr, int64_t epoch) const = 0;

protected:
    void apply();  // sets every group's rate for epoch_
    Optimizer& opt_;
    std::vector<double> base_lrs_;
    int64_t epoch_ = 0;
};

// lr = base * gamma^(epoch / step_size), like torch.optim.lr_scheduler.StepLR.
class StepLr : public LrScheduler {
public:
    StepLr(Optimizer& opt, int64_t step_size, double gamma = 0.1);
    double rate(double base_lr, int64_t epoch) const override;

private:
    int64_t step_size_;
    double gamma_;
};

// lr = base * gamma^(number of milestones <= epoch), like MultiStepLR. Milestones must increase.
class MultiStepLr : public LrScheduler {
public:
    MultiStepLr(Optimizer& opt, std::vector<int64_t> milestones, double gamma = 0.1);
    double rate(double base_lr, int64_t epoch) const override;

private:
    std::vector<int64_t> milestones_;
    double gamma_;
};

// Linear warm-up from base * warmup_start_factor at epoch 0 to base at epoch warmup_epochs, then a
// cosine from base down to min_lr at total_epochs (and min_lr after it).
class CosineWarmupLr : public LrScheduler {
public:
    CosineWarmupLr(Optimizer& opt, int64_t warmup_epochs, int64_t total_epochs, double min_lr = 0.0,
                   double warmup_start_factor = 0.1);
    double rate(double base_lr, int64_t epoch) const override;

private:
    int64_t warmup_, total_;
    double min_lr_, start_factor_;
};

// Like torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode "rel": when the metric has not
// improved by more than threshold (relative) for more than `patience` epochs, every group's lr =
// max(lr * factor, min_lr), then `cooldown` epochs pass before counting again.
class ReduceLrOnPlateau {
public:
    enum class Mode { min, max };
    ReduceLrOnPlateau(Optimizer& opt, Mode mode = Mode::min, double factor = 0.1, int64_t patience = 10,
                      double threshold = 1e-4, int64_t cooldown = 0, double min_lr = 0.0);
    void step(double metric);
    double best() const { return best_; }
    int64_t num_bad_epochs() const { return bad_; }

private:
    bool better(double a, double best) const;
    Optimizer& opt_;
    Mode mode_;
    double factor_, threshold_, min_lr_;
    int64_t patience_, cooldown_;
    double best_;
    int64_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace dyad::optim

DYAD_PUBLIC_END
