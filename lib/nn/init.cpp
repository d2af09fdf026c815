// nn::init: torch.nn.init's formulas. Values are drawn on the CPU from the calling thread's generator in
// float64 (so a tensor gets the same numbers whatever its device or dtype) and copied in.
#include <cmath>

#include "dyad/autograd.h"
#include "dyad/nn.h"

namespace dyad::nn::init {

namespace {

void check(const Tensor& t, const char* op) {
    DYAD_CHECK(t.defined(), op, ": the tensor is undefined");
    DYAD_CHECK(is_floating(t.dtype()), op, ": the tensor must be floating, got ", t.str());
}

Tensor& fill_from(Tensor& t, const Tensor& values) {
    NoGradGuard ng;
    t.copy_(values);
    return t;
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
    switch (nonlinearity) {
        case Nonlinearity::linear:
        case Nonlinearity::conv:
        case Nonlinearity::sigmoid:
            return 1.0;
        case Nonlinearity::tanh:
            return 5.0 / 3.0;
        case Nonlinearity::relu:
            return std::sqrt(2.0);
        case Nonlinearity::leaky_relu:
            return std::sqrt(2.0 / (1.0 + param * param));
        case Nonlinearity::selu:
            return 3.0 / 4.0;
    }
    return 1.0;
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
    DYAD_CHECK(t.defined() && t.dim() >= 2,
               "calculate_fan_in_and_fan_out: fans cannot be computed for a tensor with fewer than 2 dimensions, got ",
               t.defined() ? shape_str(t.shape()) : std::string("an undefined tensor"));
    int64_t receptive = 1;
    for (int64_t d = 2; d < t.dim(); d++) receptive *= t.size(d);
    return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor& uniform_(Tensor& t, double a, double b) {
    check(t, "uniform_");
    DYAD_CHECK(a <= b, "uniform_: the lower bound ", a, " exceeds the upper bound ", b);
    NoGradGuard ng;
    return fill_from(t, Tensor::rand(t.shape(), DType::float64) * (b - a) + a);
}

Tensor& normal_(Tensor& t, double mean, double std) {
    check(t, "normal_");
    DYAD_CHECK(std >= 0.0, "normal_: std must be >= 0, got ", std);
    NoGradGuard ng;
    return fill_from(t, Tensor::randn(t.shape(), DType::float64) * std + mean);
}

Tensor& constant_(Tensor& t, double value) {
    check(t, "constant_");
    NoGradGuard ng;
    t.fill_(value);
    return t;
}

Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& xavier_uniform_(Tensor& t, double gain) {
    check(t, "xavier_uniform_");
    const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
    const double a = gain * std::sqrt(6.0 / double(fan_in + fan_out));
    return uniform_(t, -a, a);
}

Tensor& xavier_normal_(Tensor& t, double gain) {
    check(t, "xavier_normal_");
    const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
    return normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)));
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity, const char* op) {
    check(t, op);
    const auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
    const int64_t fan = mode == FanMode::fan_in ? fan_in : fan_out;
    DYAD_CHECK(fan > 0, op, ": the fan of ", shape_str(t.shape()), " is zero");
    return calculate_gain(nonlinearity, a) / std::sqrt(double(fan));
}
}  // namespace

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
    const double bound = std::sqrt(3.0) * kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_");
    return uniform_(t, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, Nonlinearity nonlinearity) {
    return normal_(t, 0.0, kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"));
}

}  // namespace dyad::nn::init
