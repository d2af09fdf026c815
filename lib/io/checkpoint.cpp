// Training checkpoints on top of safetensors: the module's state_dict under its own names, the
// optimizer's state under "optimizer.", and the optimizer's type, step and learning rates and the
// generator state in the metadata. load() checks everything against the module and optimizer before it
// changes anything.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "dyad/io.h"

namespace dyad::io {

namespace {

const std::string kOptPrefix = "optimizer.";

// The shortest decimal form that reads back as the same double.
std::string exact_double(double v) {
    char buf[64];
    for (int p = 1; p <= 17; p++) {
        std::snprintf(buf, sizeof buf, "%.*g", p, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

std::string rng_to_string(const RngState& st) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, st.s[0], st.s[1],
                  st.s[2], st.s[3]);
    return buf;
}

// Four hexadecimal words separated by spaces; false when the text is anything else.
bool rng_from_string(const std::string& text, RngState& st) {
    std::istringstream is(text);
    std::string word;
    int n = 0;
    while (is >> word) {
        if (n == 4 || word.empty() || word.size() > 16) return false;
        for (char c : word)
            if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
        st.s[n++] = std::strtoull(word.c_str(), nullptr, 16);
    }
    return n == 4 && (st.s[0] | st.s[1] | st.s[2] | st.s[3]) != 0;
}

bool parse_int(const std::string& text, int64_t& v) {
    if (text.empty()) return false;
    char* end = nullptr;
    errno = 0;
    const long long r = std::strtoll(text.c_str(), &end, 10);
    if (errno != 0 || *end != '\0') return false;
    v = r;
    return true;
}

bool parse_double(const std::string& text, double& v) {
    if (text.empty()) return false;
    char* end = nullptr;
    v = std::strtod(text.c_str(), &end);
    return *end == '\0' && std::isfinite(v);
}

// A 64-bit checksum of a checkpoint's contents: every tensor (name, dtype, shape, bytes), in name order, and
// every metadata entry but the checksum itself. Four interleaved multiply-xor lanes over 8-byte words keep
// it at memory speed; a flipped bit anywhere changes it.
class Checksum {
public:
    void add(const void* p, size_t n) {
        const auto* c = static_cast<const unsigned char*>(p);
        size_t i = 0;
        for (; i + 32 <= n; i += 32)
            for (int l = 0; l < 4; l++) {
                uint64_t w;
                std::memcpy(&w, c + i + 8 * l, 8);
                lane_[l] = (lane_[l] ^ w) * kPrime;
            }
        for (; i < n; i++) lane_[0] = (lane_[0] ^ c[i]) * kPrime;
        length_ += n;
    }
    void add(const std::string& s) {
        const uint64_t n = s.size();
        add(&n, sizeof n);
        add(s.data(), s.size());
    }
    std::string hex() const {
        uint64_t h = length_;
        for (uint64_t l : lane_) h = (h ^ (l >> 29) ^ l) * kPrime;
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016" PRIx64, h ^ (h >> 32));
        return buf;
    }

private:
    static constexpr uint64_t kPrime = 0x100000001b3ull;
    uint64_t lane_[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull, 0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full};
    uint64_t length_ = 0;
};

std::string checksum_of(const nn::NamedTensors& tensors, const Metadata& meta) {
    std::vector<std::pair<std::string, Tensor>> sorted(tensors.begin(), tensors.end());
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    Checksum c;
    for (const auto& [name, t] : sorted) {
        const Tensor h = t.to(Device::cpu()).contiguous();
        c.add(name);
        c.add(dtype_name(h.dtype()));
        c.add(shape_str(h.shape()));
        c.add(h.raw_data(), size_t(h.numel()) * dtype_size(h.dtype()));
    }
    for (const auto& [key, value] : meta)
        if (key != "checksum") c.add(key), c.add(value);
    return c.hex();
}

// "a, b, c" with at most `limit` names, then "... (N more)".
std::string name_list(const std::vector<std::string>& names, size_t limit = 20) {
    std::string out;
    for (size_t i = 0; i < names.size() && i < limit; i++) out += (i ? ", " : "") + names[i];
    if (names.size() > limit) out += ", ... (" + std::to_string(names.size() - limit) + " more)";
    return out;
}

}  // namespace

void save(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer, const Metadata& extra) {
    for (const auto& entry : extra)
        DYAD_CHECK(entry.first != "format" && entry.first != "rng" && entry.first != "checksum" &&
                       entry.first.compare(0, kOptPrefix.size(), kOptPrefix) != 0,
                   "save: '", path, "': metadata key '", entry.first, "' is reserved for the checkpoint itself");
    nn::NamedTensors tensors = model.state_dict();
    Metadata meta = extra;
    meta["format"] = "dyad";
    meta["rng"] = rng_to_string(rng_state());
    if (optimizer) {
        for (auto& [name, t] : optimizer->state_dict()) tensors.emplace_back(kOptPrefix + name, t);
        meta["optimizer.type"] = optimizer->name();
        meta["optimizer.step"] = std::to_string(optimizer->step_count());
        meta["optimizer.lr"] = exact_double(optimizer->lr(0));
        for (size_t g = 1; g < optimizer->num_groups(); g++)
            meta["optimizer.lr." + std::to_string(g)] = exact_double(optimizer->lr(g));
    }
    // One host copy serves both the checksum and the file (save_tensors keeps host tensors as they are).
    for (auto& entry : tensors) entry.second = entry.second.detach().to(Device::cpu()).contiguous();
    meta["checksum"] = checksum_of(tensors, meta);
    save_tensors(path, tensors, meta);
}

Metadata load(const std::string& path, nn::Module& model, optim::Optimizer* optimizer, bool restore_rng) {
    Metadata meta;
    const nn::NamedTensors file = load_tensors(path, &meta);
    // Files written by save() carry a checksum; other safetensors files (e.g. from PyTorch) do not.
    const auto sum = meta.find("checksum");
    if (sum != meta.end()) {
        const std::string actual = checksum_of(file, meta);
        DYAD_CHECK(actual == sum->second, "load: '", path, "' is damaged: its contents give checksum ", actual,
                   " but it was saved with ", sum->second, "; nothing was changed");
    }

    std::map<std::string, Tensor> own;
    for (auto& [name, t] : model.state_dict()) own.emplace(name, t);

    nn::NamedTensors model_entries, opt_entries;
    std::vector<std::string> missing, unexpected, mismatched, wrong_dtype, problems;
    std::map<std::string, bool> present;
    for (const auto& [name, t] : file) {
        present[name] = true;
        auto it = own.find(name);
        if (it != own.end()) {
            if (t.shape() != it->second.shape())
                mismatched.push_back(name + " " + shape_str(t.shape()) + " in the file vs " +
                                     shape_str(it->second.shape()) + " in the model");
            // Floating-point values are not converted into an integer tensor (out of its range they have no
            // value there).
            if (is_floating(t.dtype()) && !is_floating(it->second.dtype()))
                wrong_dtype.push_back(name + " " + dtype_name(t.dtype()) + " in the file vs " +
                                      dtype_name(it->second.dtype()) + " in the model");
            model_entries.emplace_back(name, t);
            continue;
        }
        if (name.compare(0, kOptPrefix.size(), kOptPrefix) == 0) {
            if (!optimizer) continue;  // optimizer state is not needed to restore a model
            opt_entries.emplace_back(name.substr(kOptPrefix.size()), t);
            continue;
        }
        unexpected.push_back(name);
    }
    for (const auto& entry : model.state_dict())
        if (!present.count(entry.first)) missing.push_back(entry.first);

    int64_t step = 0;
    std::vector<double> lrs;
    std::vector<std::string> opt_problems;
    if (optimizer) {
        // The optimizer's own checks of its state (kinds, parameters, shapes), then the metadata.
        opt_problems = optimizer->check_state_dict(opt_entries);
        auto type = meta.find("optimizer.type");
        if (type != meta.end() && type->second != optimizer->name())
            problems.push_back("the file holds the state of a " + type->second + " optimizer, not of " +
                               optimizer->name());
        auto s = meta.find("optimizer.step");
        if (s != meta.end() && (!parse_int(s->second, step) || step < 0))
            problems.push_back("metadata optimizer.step '" + s->second + "' is not a step count");
        for (size_t g = 0; g < optimizer->num_groups(); g++) {
            double lr = optimizer->lr(g);
            const std::string key = g == 0 ? "optimizer.lr" : "optimizer.lr." + std::to_string(g);
            auto l = meta.find(key);
            if (l != meta.end() && (!parse_double(l->second, lr) || lr < 0))
                problems.push_back("metadata " + key + " '" + l->second + "' is not a learning rate");
            lrs.push_back(lr);
        }
    }
    RngState rng{};
    auto r = meta.find("rng");
    const bool has_rng = r != meta.end();
    if (has_rng && !rng_from_string(r->second, rng))
        problems.push_back("metadata rng '" + r->second + "' is not four non-zero hexadecimal words");

    std::string msg;
    auto add = [&](const char* what, const std::vector<std::string>& names) {
        if (!names.empty())
            msg += std::string(msg.empty() ? "" : "; ") + what + " (" + std::to_string(names.size()) +
                   "): " + name_list(names);
    };
    add("missing from the file", missing);
    add("unexpected in the file", unexpected);
    add("shape mismatch", mismatched);
    add("dtype mismatch", wrong_dtype);
    add("optimizer state", opt_problems);
    add("bad metadata", problems);
    DYAD_CHECK(msg.empty(), "load: '", path, "' does not fit the ", model.type_name(),
               optimizer ? " and its optimizer" : "", ", nothing was changed: ", msg);

    model.load_state_dict(model_entries, true);
    if (optimizer) {
        optimizer->load_state_dict(opt_entries, step);
        for (size_t g = 0; g < lrs.size(); g++) optimizer->set_lr(g, lrs[g]);
    }
    if (has_rng && restore_rng) set_rng_state(rng);
    return meta;
}

}  // namespace dyad::io
