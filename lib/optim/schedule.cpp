// Learning-rate schedules with PyTorch's semantics: StepLR and MultiStepLR in their closed forms, a
// linear warm-up followed by a cosine, and ReduceLROnPlateau (threshold_mode "rel").
#include <algorithm>
#include <cmath>
#include <limits>

#include "dyad/optim.h"

namespace dyad::optim {

namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

// ---------------------------------------------------------------------------- LrScheduler
LrScheduler::LrScheduler(Optimizer& opt) : opt_(opt) {
    for (size_t g = 0; g < opt.num_groups(); g++) base_lrs_.push_back(opt.lr(g));
}

void LrScheduler::step() {
    epoch_++;
    apply();
}

void LrScheduler::apply() {
    for (size_t g = 0; g < base_lrs_.size(); g++) opt_.set_lr(g, rate(base_lrs_[g], epoch_));
}

// ---------------------------------------------------------------------------- StepLr
StepLr::StepLr(Optimizer& opt, int64_t step_size, double gamma)
    : LrScheduler(opt), step_size_(step_size), gamma_(gamma) {
    DYAD_CHECK(step_size > 0, "StepLr: step_size must be positive, got ", step_size);
    DYAD_CHECK(gamma >= 0.0, "StepLr: gamma must be >= 0, got ", gamma);
    apply();
}

double StepLr::rate(double base_lr, int64_t epoch) const {
    return base_lr * std::pow(gamma_, double(epoch / step_size_));
}

// ---------------------------------------------------------------------------- MultiStepLr
MultiStepLr::MultiStepLr(Optimizer& opt, std::vector<int64_t> milestones, double gamma)
    : LrScheduler(opt), milestones_(std::move(milestones)), gamma_(gamma) {
    for (size_t i = 1; i < milestones_.size(); i++)
        DYAD_CHECK(milestones_[i] > milestones_[i - 1], "MultiStepLr: milestones must increase, got ",
                   milestones_[i - 1], " then ", milestones_[i]);
    DYAD_CHECK(gamma >= 0.0, "MultiStepLr: gamma must be >= 0, got ", gamma);
    apply();
}

double MultiStepLr::rate(double base_lr, int64_t epoch) const {
    // bisect_right: the number of milestones <= epoch.
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
    return base_lr * std::pow(gamma_, double(passed));
}

// ---------------------------------------------------------------------------- CosineWarmupLr
CosineWarmupLr::CosineWarmupLr(Optimizer& opt, int64_t warmup_epochs, int64_t total_epochs, double min_lr,
                               double warmup_start_factor)
    : LrScheduler(opt),
      warmup_(warmup_epochs),
      total_(total_epochs),
      min_lr_(min_lr),
      start_factor_(warmup_start_factor) {
    DYAD_CHECK(warmup_epochs >= 0, "CosineWarmupLr: warmup_epochs must be >= 0, got ", warmup_epochs);
    DYAD_CHECK(total_epochs > warmup_epochs, "CosineWarmupLr: total_epochs (", total_epochs,
               ") must exceed warmup_epochs (", warmup_epochs, ")");
    DYAD_CHECK(min_lr >= 0.0, "CosineWarmupLr: min_lr must be >= 0, got ", min_lr);
    DYAD_CHECK(warmup_start_factor >= 0.0 && warmup_start_factor <= 1.0,
               "CosineWarmupLr: warmup_start_factor must be in [0, 1], got ", warmup_start_factor);
    apply();
}

double CosineWarmupLr::rate(double base_lr, int64_t epoch) const {
    if (epoch < warmup_) return base_lr * (start_factor_ + (1.0 - start_factor_) * double(epoch) / double(warmup_));
    if (epoch >= total_) return min_lr_;
    const double progress = double(epoch - warmup_) / double(total_ - warmup_);
    return min_lr_ + (base_lr - min_lr_) * 0.5 * (1.0 + std::cos(kPi * progress));
}

// ---------------------------------------------------------------------------- ReduceLrOnPlateau
ReduceLrOnPlateau::ReduceLrOnPlateau(Optimizer& opt, Mode mode, double factor, int64_t patience, double threshold,
                                     int64_t cooldown, double min_lr)
    : opt_(opt),
      mode_(mode),
      factor_(factor),
      threshold_(threshold),
      min_lr_(min_lr),
      patience_(patience),
      cooldown_(cooldown),
      best_(mode == Mode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity()) {
    DYAD_CHECK(factor >= 0.0 && factor < 1.0, "ReduceLrOnPlateau: factor should be < 1.0 (and >= 0), got ", factor);
    DYAD_CHECK(patience >= 0, "ReduceLrOnPlateau: patience must be >= 0, got ", patience);
    DYAD_CHECK(threshold >= 0.0, "ReduceLrOnPlateau: threshold must be >= 0, got ", threshold);
    DYAD_CHECK(cooldown >= 0, "ReduceLrOnPlateau: cooldown must be >= 0, got ", cooldown);
    DYAD_CHECK(min_lr >= 0.0, "ReduceLrOnPlateau: min_lr must be >= 0, got ", min_lr);
}

bool ReduceLrOnPlateau::better(double a, double best) const {
    if (mode_ == Mode::min) return a < best * (1.0 - threshold_);
    return a > best * (1.0 + threshold_);
}

void ReduceLrOnPlateau::step(double metric) {
    if (better(metric, best_)) {
        best_ = metric;
        bad_ = 0;
    } else {
        bad_++;
    }
    if (cooldown_left_ > 0) {  // bad epochs during the cooldown do not count
        cooldown_left_--;
        bad_ = 0;
    }
    if (bad_ > patience_) {
        for (size_t g = 0; g < opt_.num_groups(); g++) {
            const double old_lr = opt_.lr(g), new_lr = std::max(old_lr * factor_, min_lr_);
            if (old_lr - new_lr > 1e-8) opt_.set_lr(g, new_lr);  // PyTorch's eps: tiny changes are skipped
        }
        cooldown_left_ = cooldown_;
        bad_ = 0;
    }
}

}  // namespace dyad::optim
