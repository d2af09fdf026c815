// SGD with momentum, Nesterov and weight decay (torch.optim.SGD's update rule), and learning-rate schedules.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dyad/tensor.h"

namespace dyad::optim {

struct SgdOptions {
    double lr = 0.01;
    double momentum = 0.0;
    double dampening = 0.0;
    double weight_decay = 0.0;
    bool nesterov = false;  // needs momentum > 0 and dampening == 0, as in PyTorch
    // Check every gradient before updating anything: a non-finite value throws a dyad::Error naming the
    // parameter, and no parameter is changed.
    bool check_finite = false;
};

class Sgd {
public:
    // Named parameters (e.g. module.named_parameters()): names key the momentum buffers in checkpoints.
    Sgd(std::vector<std::pair<std::string, Tensor>> params, SgdOptions options);
    // Unnamed parameters get the names "0", "1", ...
    Sgd(const std::vector<Tensor>& params, SgdOptions options);

    // One fused update kernel per parameter on the CPU; on a GPU one launch per group of up to 48
    // parameters, and no wait for the GPU. Parameters without a gradient (grad() undefined) are skipped,
    // like PyTorch, but a step in which no parameter has one throws (nothing would change: backward was
    // not run). Momentum buffers follow their parameter to a new device or dtype (Module::to). Runs
    // without recording on the tape.
    void step();
    // Sets every parameter's grad() to undefined.
    void zero_grad();

    double lr() const { return opt_.lr; }
    void set_lr(double lr);
    const SgdOptions& options() const { return opt_; }
    int64_t step_count() const { return steps_; }
    // Steps a captured graph replayed (the host-side step count does not see them): a training step run
    // through CapturedStep (dyad/capture.h) calls step() on the host only when it runs eagerly or is
    // captured; after a call that replayed the graph (last_replayed()), call add_replayed_steps(1).
    void add_replayed_steps(int64_t n);

    // Optimizer state for checkpoints: "momentum_buffer.<name>" for every parameter that has one.
    std::vector<std::pair<std::string, Tensor>> state() const;
    // Restores state() output and the step count; a missing buffer means "not started" for that parameter.
    // Shapes are checked before anything changes.
    void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step_count);
    const std::vector<std::pair<std::string, Tensor>>& params() const { return params_; }

private:
    std::vector<std::pair<std::string, Tensor>> params_;
    std::vector<Tensor> bufs_;  // undefined until a parameter's first step (with momentum)
    SgdOptions opt_;
    int64_t steps_ = 0;
};

// Learning-rate schedules. Construction records the optimizer's lr as base_lr and sets the epoch-0 rate;
// step() advances one epoch (or one iteration, as the caller chooses) and sets the optimizer's lr.
class LrScheduler {
public:
    explicit LrScheduler(Sgd& opt);
    virtual ~LrScheduler() = default;
    virtual void step();
    int64_t last_epoch() const { return epoch_; }
    double base_lr() const { return base_lr_; }
    // Rate for `epoch` (closed form).
    virtual double lr_at(int64_t epoch) const = 0;

protected:
    void apply();  // sets the optimizer's rate for epoch_
    Sgd& opt_;
    double base_lr_;
    int64_t epoch_ = 0;
};

// lr = base * gamma^(epoch / step_size), like torch.optim.lr_scheduler.StepLR.
class StepLr : public LrScheduler {
public:
    StepLr(Sgd& opt, int64_t step_size, double gamma = 0.1);
    double lr_at(int64_t epoch) const override;

private:
    int64_t step_size_;
    double gamma_;
};

// lr = base * gamma^(number of milestones <= epoch), like MultiStepLR. Milestones must increase.
class MultiStepLr : public LrScheduler {
public:
    MultiStepLr(Sgd& opt, std::vector<int64_t> milestones, double gamma = 0.1);
    double lr_at(int64_t epoch) const override;

private:
    std::vector<int64_t> milestones_;
    double gamma_;
};

// Linear warm-up from base * warmup_start_factor at epoch 0 to base at epoch warmup_epochs, then a
// cosine from base down to min_lr at total_epochs (and min_lr after it).
class CosineWarmupLr : public LrScheduler {
public:
    CosineWarmupLr(Sgd& opt, int64_t warmup_epochs, int64_t total_epochs, double min_lr = 0.0,
                   double warmup_start_factor = 0.1);
    double lr_at(int64_t epoch) const override;

private:
    int64_t warmup_, total_;
    double min_lr_, start_factor_;
};

// Like torch.optim.lr_scheduler.ReduceLROnPlateau with threshold_mode "rel": when the metric has not
// improved by more than threshold (relative) for more than `patience` epochs, lr = max(lr * factor,
// min_lr), then `cooldown` epochs pass before counting again.
class ReduceLrOnPlateau {
public:
    enum class Mode { min, max };
    ReduceLrOnPlateau(Sgd& opt, Mode mode = Mode::min, double factor = 0.1, int64_t patience = 10,
                      double threshold = 1e-4, int64_t cooldown = 0, double min_lr = 0.0);
    void step(double metric);
    double best() const { return best_; }
    int64_t num_bad_epochs() const { return bad_; }

private:
    bool better(double a, double best) const;
    Sgd& opt_;
    Mode mode_;
    double factor_, threshold_, min_lr_;
    int64_t patience_, cooldown_;
    double best_;
    int64_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace dyad::optim
