// Module: registration of parameters, buffers and children; the PyTorch-ordered walks over them
// (named_parameters, state_dict, named_modules); load_state_dict; mode and device changes. Sequential.
#include <cxxabi.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <typeinfo>

#include "dyad/autograd.h"
#include "dyad/nn.h"

namespace dyad::nn {

namespace {

thread_local ForwardRecorder* g_recorder = nullptr;
std::atomic<bool> g_fuse_layers{true};

std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
}

// Empty when every value of the integer tensor src fits the integer dtype dst (or either is floating);
// otherwise the first value that does not, with its position and the range.
std::string integer_range_problem(const Tensor& src, DType dst) {
    if (is_floating(src.dtype()) || is_floating(dst) || dtype_size(src.dtype()) <= dtype_size(dst) || src.numel() == 0)
        return "";
    const int64_t lo = dst == DType::uint8 ? 0 : dst == DType::int32 ? INT32_MIN : INT64_MIN;
    const int64_t hi = dst == DType::uint8 ? 255 : dst == DType::int32 ? INT32_MAX : INT64_MAX;
    const std::vector<int64_t> v = src.detach().to(DType::int64).to_vector<int64_t>();
    for (size_t i = 0; i < v.size(); i++)
        if (v[i] < lo || v[i] > hi)
            return "value " + std::to_string(v[i]) + " at index " + std::to_string(i) + " does not fit " +
                   dtype_name(dst) + " [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return "";
}

}  // namespace

RecorderScope::RecorderScope(ForwardRecorder* recorder) : prev_(g_recorder) { g_recorder = recorder; }
RecorderScope::~RecorderScope() { g_recorder = prev_; }

static bool recorder_installed() { return g_recorder != nullptr; }

// ---------------------------------------------------------------------------- Module
Tensor Module::operator()(const Tensor& x) {
    Tensor y = forward(x);
    if (g_recorder) g_recorder->record(*this, x, y);
    return y;
}

Tensor Module::operator()(const std::vector<Tensor>& inputs) {
    Tensor y = forward(inputs);
    if (g_recorder) g_recorder->record(*this, inputs.empty() ? Tensor() : inputs[0], y);
    return y;
}

Tensor Module::forward(const Tensor& x) { return forward(std::vector<Tensor>{x}); }

Tensor Module::forward(const std::vector<Tensor>& inputs) {
    DYAD_CHECK(false, type_name(), ": forward is not implemented for ", inputs.size(), " input",
               inputs.size() == 1 ? "" : "s",
               " (override forward(const Tensor&) or forward(const std::vector<Tensor>&))");
    return Tensor();
}

std::string Module::type_name() const {
    // The dynamic type's name without namespaces or template arguments: "Affine" for my::Affine.
    int status = 0;
    char* raw = abi::__cxa_demangle(typeid(*this).name(), nullptr, nullptr, &status);
    std::string name = status == 0 && raw ? raw : typeid(*this).name();
    std::free(raw);
    const size_t angle = name.find('<');
    if (angle != std::string::npos) name = name.substr(0, angle);
    const size_t colon = name.rfind("::");
    return colon == std::string::npos ? name : name.substr(colon + 2);
}

void Module::apply(const std::function<void(Module&)>& fn) {
    for (auto& entry : children_) entry.second->apply(fn);
    fn(*this);
}

void Module::check_new_name(const std::string& name) const {
    DYAD_CHECK(!name.empty(), type_name(), ": empty parameter, buffer or module name");
    DYAD_CHECK(name.find('.') == std::string::npos, type_name(), ": name '", name, "' contains '.'");
    auto taken = [&](const auto& list) {
        for (const auto& entry : list)
            if (entry.first == name) return true;
        return false;
    };
    DYAD_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name(), ": name '", name,
               "' is already registered");
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
    check_new_name(name);
    DYAD_CHECK(t.defined(), type_name(), ": register_parameter '", name, "': the tensor is undefined");
    DYAD_CHECK(is_floating(t.dtype()), type_name(), ": register_parameter '", name,
               "': parameters must be floating, not ", dtype_name(t.dtype()));
    if (!t.is_leaf()) t = t.detach();
    t.requires_grad_(true);
    params_.emplace_back(name, std::move(t));
    return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
    check_new_name(name);
    DYAD_CHECK(t.defined(), type_name(), ": register_buffer '", name, "': the tensor is undefined");
    buffers_.emplace_back(name, t.detach());
    return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
    check_new_name(name);
    DYAD_CHECK(m != nullptr, type_name(), ": register_module '", name, "': null module");
    children_.emplace_back(name, std::move(m));
}

NamedTensors Module::named_parameters(const std::string& prefix) const {
    NamedTensors out;
    for (const auto& [name, t] : params_) out.emplace_back(join(prefix, name), t);
    for (const auto& [name, child] : children_) {
        NamedTensors sub = child->named_parameters(join(prefix, name));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& entry : named_parameters()) out.push_back(entry.second);
    return out;
}

NamedTensors Module::named_buffers(const std::string& prefix) const {
    NamedTensors out;
    for (const auto& [name, t] : buffers_) out.emplace_back(join(prefix, name), t);
    for (const auto& [name, child] : children_) {
        NamedTensors sub = child->named_buffers(join(prefix, name));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

NamedTensors Module::state_dict(const std::string& prefix) const {
    NamedTensors out;
    for (const auto& [name, t] : params_) out.emplace_back(join(prefix, name), t);
    for (const auto& [name, t] : buffers_) out.emplace_back(join(prefix, name), t);
    for (const auto& [name, child] : children_) {
        NamedTensors sub = child->state_dict(join(prefix, name));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
    std::vector<std::pair<std::string, Module*>> out;
    out.emplace_back(prefix, this);
    for (const auto& [name, child] : children_) {
        auto sub = child->named_modules(join(prefix, name));
        out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
    const NamedTensors own = state_dict();
    std::map<std::string, const Tensor*> given;
    std::vector<std::string> duplicates, unexpected, missing, mismatched, undefined, out_of_range;
    for (const auto& [name, t] : state) {
        if (!given.emplace(name, &t).second) duplicates.push_back(name);
        if (!t.defined()) undefined.push_back(name);
    }
    std::set<std::string> own_names;
    for (const auto& [name, t] : own) {
        own_names.insert(name);
        auto it = given.find(name);
        if (it == given.end()) {
            missing.push_back(name);
        } else if (it->second->defined() && it->second->shape() != t.shape()) {
            mismatched.push_back(name + " " + shape_str(it->second->shape()) + " in the state vs " +
                                 shape_str(t.shape()) + " in the module");
        } else if (it->second->defined()) {
            const std::string bad = integer_range_problem(*it->second, t.dtype());
            if (!bad.empty()) out_of_range.push_back(name + " " + bad);
        }
    }
    for (const auto& [name, t] : state)
        if (!own_names.count(name)) unexpected.push_back(name);

    std::ostringstream problems;
    auto list = [&](const char* what, const std::vector<std::string>& names) {
        if (names.empty()) return;
        problems << "; " << what << " (" << names.size() << "): ";
        for (size_t i = 0; i < names.size(); i++) problems << (i ? ", " : "") << names[i];
    };
    list("duplicate names", duplicates);
    list("undefined tensors", undefined);
    if (strict) {
        list("missing", missing);
        list("unexpected", unexpected);
    }
    list("shape mismatch", mismatched);
    list("integer values out of range", out_of_range);
    const std::string msg = problems.str();
    DYAD_CHECK(msg.empty(), "load_state_dict: ", type_name(), ": the state does not match the module:", msg.substr(1));

    NoGradGuard ng;
    for (const auto& [name, t] : own) {
        auto it = given.find(name);
        if (it == given.end()) continue;
        Tensor dst = t;  // a handle to the module's own tensor
        dst.copy_(it->second->detach());
    }
}

void Module::train(bool on) {
    training_ = on;
    for (auto& entry : children_) entry.second->train(on);
}

void Module::to(Device device) {
    NoGradGuard ng;
    // set_data: the same tensors (every handle an optimizer or a member holds) take the moved data.
    for (auto& [name, t] : params_)
        if (t.device() != device) t.set_data(t.detach().to(device));
    for (auto& [name, t] : buffers_)
        if (t.device() != device) t.set_data(t.detach().to(device));
    for (auto& entry : children_) entry.second->to(device);
}

void Module::to(DType dtype) {
    DYAD_CHECK(dtype == DType::float32 || dtype == DType::float64,
               "Module::to: parameters can only become float32 or float64, got ", dtype_name(dtype),
               dtype == DType::bfloat16 ? " (bfloat16 copies of float32 parameters are made in the forward pass)" : "");
    NoGradGuard ng;
    for (auto& [name, t] : params_)
        if (t.dtype() != dtype) t.set_data(t.detach().to(dtype));
    for (auto& [name, t] : buffers_)  // integer buffers (batch counters) keep their dtype, as in PyTorch
        if (is_floating(t.dtype()) && t.dtype() != dtype) t.set_data(t.detach().to(dtype));
    for (auto& entry : children_) entry.second->to(dtype);
}

void Module::to(MemoryFormat format) {
    NoGradGuard ng;
    for (auto& [name, t] : params_)
        if (t.dim() == 4 && t.memory_format() != format) t.set_data(t.detach().contiguous(format));
    for (auto& entry : children_) entry.second->to(format);
}

void Module::zero_grad() {
    for (auto& entry : params_) entry.second.zero_grad();
    for (auto& entry : children_) entry.second->zero_grad();
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (const auto& entry : named_parameters()) n += entry.second.numel();
    return n;
}

// ---------------------------------------------------------------------------- Sequential
Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
    for (const ModulePtr& m : modules) push_back(m);
}

Sequential& Sequential::push_back(ModulePtr m) {
    register_module(std::to_string(size()), std::move(m));
    return *this;
}

ModulePtr Sequential::operator[](size_t i) const {
    DYAD_CHECK(i < size(), "Sequential: index ", i, " is out of range for ", size(), " modules");
    return children()[i].second;
}

void set_fuse_layers(bool on) { g_fuse_layers.store(on); }
bool fuse_layers() { return g_fuse_layers.load(); }
bool fusion_active() { return !recorder_installed() && fuse_layers(); }

namespace {
// Exactly class M, not a subclass: a subclass may override forward(), which the fused paths would skip.
template <typename M>
bool is(const Module* m) {
    return m != nullptr && typeid(*m) == typeid(M);
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
    const auto& c = children();
    // A recorder must see every layer, so it turns the fusions off.
    const bool fuse = fusion_active();
    auto at = [&c](size_t i) { return i < c.size() ? c[i].second.get() : nullptr; };
    Tensor h = x;
    for (size_t i = 0; i < c.size(); i++) {
        Module* m = at(i);
        if (fuse && is<ReLU>(at(i + 1))) {
            // Conv2d, ReLU: one conv2d_relu, unless a MaxPool2d follows (then ReLU + pool fuse instead).
            if (is<Conv2d>(m) && !is<MaxPool2d>(at(i + 2))) {
                h = static_cast<Conv2d*>(m)->forward_relu(h);
                i++;
                continue;
            }
        }
        if (fuse && is<ReLU>(m) && is<MaxPool2d>(at(i + 1))) {
            h = static_cast<MaxPool2d*>(at(i + 1))->forward_relu(h);
            i++;
            continue;
        }
        h = (*m)(h);
    }
    return h;
}

}  // namespace dyad::nn
