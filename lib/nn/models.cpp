// The reference CNN and a ResNet-18 for small images, with torchvision's module names.
#include <cmath>

#include "dyad/autograd.h"
#include "dyad/nn.h"

namespace dyad::models {

namespace {

using nn::BasicBlock;
using nn::BatchNorm2d;
using nn::Conv2d;
using nn::Sequential;

// torchvision's ResNet with BasicBlocks [2, 2, 2, 2], a 3x3 stride-1 stem and no stem max-pool.
class ResNet : public nn::Module {
public:
    ResNet(int64_t num_classes, int64_t in_channels) {
        conv1_ = register_module("conv1", std::make_shared<Conv2d>(in_channels, 64, 3, 1, 1, false));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
        relu_ = register_module("relu", std::make_shared<nn::ReLU>());
        const int64_t widths[4] = {64, 128, 256, 512};
        const int64_t strides[4] = {1, 2, 2, 2};
        int64_t in = 64;
        for (int i = 0; i < 4; i++) {
            auto layer = std::make_shared<Sequential>();
            layer->push_back(std::make_shared<BasicBlock>(in, widths[i], strides[i]));
            layer->push_back(std::make_shared<BasicBlock>(widths[i], widths[i], 1));
            layers_[i] = register_module("layer" + std::to_string(i + 1), layer);
            in = widths[i];
        }
        avgpool_ = register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
        fc_ = register_module("fc", std::make_shared<nn::Linear>(512, num_classes));

        // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") for every convolution, so
        // std = sqrt(2 / (out_channels * kh * kw)); batch norms keep weight 1 and bias 0.
        NoGradGuard ng;
        for (auto& [name, m] : named_modules()) {
            auto* conv = dynamic_cast<Conv2d*>(m);
            if (!conv) continue;
            Tensor& w = conv->weight();
            const Shape& s = w.shape();
            const double std_dev = std::sqrt(2.0 / double(s[0] * s[2] * s[3]));
            w.copy_(Tensor::randn(s) * std_dev);
        }
    }

    Tensor forward(const Tensor& x) override {
        Tensor h = nn::fusion_active() ? bn1_->forward_relu((*conv1_)(x)) : (*relu_)((*bn1_)((*conv1_)(x)));
        for (auto& layer : layers_) h = (*layer)(h);
        h = flatten((*avgpool_)(h), 1);
        return (*fc_)(h);
    }

    std::string type_name() const override { return "ResNet"; }

private:
    std::shared_ptr<Conv2d> conv1_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::shared_ptr<nn::ReLU> relu_;
    std::shared_ptr<Sequential> layers_[4];
    std::shared_ptr<nn::AdaptiveAvgPool2d> avgpool_;
    std::shared_ptr<nn::Linear> fc_;
};

}  // namespace

nn::ModuleHolder<nn::Sequential> baseline_cnn(int64_t num_classes, int64_t in_channels, int64_t image_size) {
    DYAD_CHECK(num_classes > 0 && in_channels > 0, "baseline_cnn: num_classes (", num_classes, ") and in_channels (",
               in_channels, ") must be positive");
    DYAD_CHECK(image_size > 0 && image_size % 8 == 0, "baseline_cnn: image_size must be a positive multiple of 8, got ",
               image_size);
    const int64_t side = image_size / 8;
    auto m = std::make_shared<Sequential>();
    m->push_back(std::make_shared<Conv2d>(in_channels, 32, 3, 1, 1));  // 0
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<Conv2d>(32, 64, 3, 1, 1));  // 3
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<Conv2d>(64, 128, 3, 1, 1));  // 6
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::MaxPool2d>(2));
    m->push_back(std::make_shared<nn::Flatten>());
    m->push_back(std::make_shared<nn::Linear>(128 * side * side, 256));  // 10
    m->push_back(std::make_shared<nn::ReLU>());
    m->push_back(std::make_shared<nn::Linear>(256, num_classes));  // 12
    return m;
}

nn::ModuleHolder<nn::Module> resnet18_small(int64_t num_classes, int64_t in_channels) {
    DYAD_CHECK(num_classes > 0 && in_channels > 0, "resnet18_small: num_classes (", num_classes, ") and in_channels (",
               in_channels, ") must be positive");
    return std::make_shared<ResNet>(num_classes, in_channels);
}

}  // namespace dyad::models
