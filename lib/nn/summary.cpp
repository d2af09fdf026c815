// nn::summary: one forward pass on zeros with a recorder hooked into Module::operator(), which notes the
// output of every leaf module (a module without children) in call order.
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "dyad/autograd.h"
#include "dyad/nn.h"

namespace dyad::nn {

namespace {

struct Row {
    std::string name, type, shape;
    int64_t params;
};

class LeafRecorder : public ForwardRecorder {
public:
    explicit LeafRecorder(Module& model) {
        for (auto& [name, m] : model.named_modules())
            if (m->children().empty()) leaves_[m] = name.empty() ? "(model)" : name;
    }
    void record(Module& module, const Tensor& /*input*/, const Tensor& output) override {
        auto it = leaves_.find(&module);
        if (it == leaves_.end()) return;
        const bool first = seen_.emplace(&module, true).second;
        // A module called twice appears twice; its parameters count once.
        rows.push_back(
            {it->second, module.type_name(), shape_str(output.shape()), first ? module.num_parameters() : 0});
        activation_bytes += output.numel() * int64_t(dtype_size(output.dtype()));
    }
    std::vector<Row> rows;
    int64_t activation_bytes = 0;

private:
    std::map<const Module*, std::string> leaves_;
    std::map<const Module*, bool> seen_;
};

// Puts every module in eval mode for a scope and restores each module's own mode afterwards.
class EvalScope {
public:
    explicit EvalScope(Module& model) : modules_(model.named_modules()) {
        for (auto& entry : modules_) modes_.push_back(entry.second->is_training());
        model.eval();
    }
    ~EvalScope() {
        // Pre-order: a parent's train() reaches its children, which are then set to their own mode.
        for (size_t i = 0; i < modules_.size(); i++) modules_[i].second->train(modes_[i]);
    }
    EvalScope(const EvalScope&) = delete;
    EvalScope& operator=(const EvalScope&) = delete;

private:
    std::vector<std::pair<std::string, Module*>> modules_;
    std::vector<bool> modes_;
};

// 1234567 -> "1,234,567"
std::string grouped(int64_t v) {
    std::string digits = std::to_string(v < 0 ? -v : v);
    std::string out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return v < 0 ? "-" + out : out;
}

std::string mib(int64_t bytes) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1024.0 * 1024.0));
    return buf;
}

std::string pad(const std::string& s, size_t width, bool right) {
    if (s.size() >= width) return s;
    const std::string fill(width - s.size(), ' ');
    return right ? fill + s : s + fill;
}

}  // namespace

// Zeros of `shape` where the model's tensors are, in the dtype of its first floating tensor.
static Tensor input_like_model(Module& model, const Shape& shape) {
    Device device = Device::cpu();
    DType dtype = DType::float32;
    for (const auto& entry : model.state_dict()) {
        if (!is_floating(entry.second.dtype())) continue;
        device = entry.second.device();
        dtype = entry.second.dtype();
        break;
    }
    return Tensor::zeros(shape, dtype, device);
}

double forward_flop(Module& model, const Shape& input_shape) {
    struct Leaves : ForwardRecorder {
        double flop = 0;
        void record(Module& m, const Tensor& in, const Tensor& out) override {
            if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
                const Shape& w = conv->weight().shape();  // (K, C, R, S)
                flop += 2.0 * double(out.numel()) * double(w[1] * w[2] * w[3]);
            } else if (dynamic_cast<Linear*>(&m)) {
                flop += 2.0 * double(out.numel()) * double(in.size(in.dim() - 1));
            }
        }
    } leaves;
    const Tensor x = input_like_model(model, input_shape);
    {
        NoGradGuard ng;
        EvalScope eval(model);
        RecorderScope scope(&leaves);
        (void)model(x);
    }
    return leaves.flop;
}

std::string summary(Module& model, const Shape& input_shape) {
    const Tensor x = input_like_model(model, input_shape);

    LeafRecorder recorder(model);
    {
        NoGradGuard ng;
        EvalScope eval(model);
        RecorderScope scope(&recorder);
        (void)model(x);
    }

    int64_t total = 0, trainable = 0, param_bytes = 0;
    for (const auto& [name, p] : model.named_parameters()) {
        total += p.numel();
        if (p.requires_grad()) trainable += p.numel();
        param_bytes += p.numel() * int64_t(dtype_size(p.dtype()));
    }

    const std::vector<std::string> head = {"Layer", "Type", "Output shape", "Params"};
    size_t w[4] = {head[0].size(), head[1].size(), head[2].size(), head[3].size()};
    for (const Row& r : recorder.rows) {
        w[0] = std::max(w[0], r.name.size());
        w[1] = std::max(w[1], r.type.size());
        w[2] = std::max(w[2], r.shape.size());
        w[3] = std::max(w[3], grouped(r.params).size());
    }
    const size_t width = w[0] + w[1] + w[2] + w[3] + 6;
    std::ostringstream os;
    os << model.type_name() << " summary for input " << shape_str(input_shape) << "\n";
    os << std::string(width, '=') << "\n";
    os << pad(head[0], w[0], false) << "  " << pad(head[1], w[1], false) << "  " << pad(head[2], w[2], false) << "  "
       << pad(head[3], w[3], true) << "\n";
    os << std::string(width, '-') << "\n";
    for (const Row& r : recorder.rows) {
        os << pad(r.name, w[0], false) << "  " << pad(r.type, w[1], false) << "  " << pad(r.shape, w[2], false) << "  "
           << pad(grouped(r.params), w[3], true) << "\n";
    }
    os << std::string(width, '=') << "\n";
    os << "Total params: " << grouped(total) << "\n";
    os << "Trainable params: " << grouped(trainable) << "\n";
    os << "Non-trainable params: " << grouped(total - trainable) << "\n";
    os << std::string(width, '-') << "\n";
    os << "Input size: " << mib(x.numel() * int64_t(dtype_size(x.dtype()))) << "\n";
    os << "Forward activations: " << mib(recorder.activation_bytes) << "\n";
    os << "Params size: " << mib(param_bytes) << "\n";
    os << std::string(width, '=') << "\n";
    return os.str();
}

}  // namespace dyad::nn
