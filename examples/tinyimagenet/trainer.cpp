// The trainer: one run per backend from the same initial weights and the same batches, with validation,
// checkpoints, per-layer profiling and the report. Batches come from data::Loader, so a backend's batches
// depend only on (data, seed, epoch, batch index) and are the same on every device.
#include "trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace dyad::trainer {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::vector<std::string> split_list(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, sep))
        if (!item.empty()) out.push_back(item);
    return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (size_t i = 0; i < v.size(); i++) out += (i ? sep : "") + v[i];
    return out;
}

// Sets the kernel set for a backend's run and restores the previous one.
struct BackendGuard {
    CpuKernels prev = cpu_kernels();
    explicit BackendGuard(const std::string& backend) {
        set_cpu_kernels(backend == "naive" ? CpuKernels::naive : CpuKernels::omp);
    }
    ~BackendGuard() { set_cpu_kernels(prev); }
};

Device device_of(const std::string& backend) { return backend == "cuda" ? Device::cuda() : Device::cpu(); }

}  // namespace

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

std::vector<std::pair<std::string, std::string>> machine_facts(int threads) {
    // Logical CPUs, physical cores (distinct physical id / core id pairs) and the widest vector extensions.
    std::ifstream in("/proc/cpuinfo");
    std::string line, flags, physical;
    std::set<std::string> cores;
    int logical = 0;
    while (std::getline(in, line)) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
        if (line.rfind("processor", 0) == 0) logical++;
        if (line.rfind("physical id", 0) == 0) physical = value;
        if (line.rfind("core id", 0) == 0) cores.insert(physical + "/" + value);
        if (line.rfind("flags", 0) == 0 && flags.empty()) flags = " " + value + " ";
    }
    auto has = [&](const char* flag) { return flags.find(" " + std::string(flag) + " ") != std::string::npos; };
    const std::string isa = has("avx512f")              ? std::string("AVX-512") + (has("amx_tile") ? " and AMX" : "")
                            : has("avx2") && has("fma") ? "AVX2 + FMA"
                            : has("avx2")               ? "AVX2"
                                                        : "no AVX2";
    std::string cpu = cpu_model() + ", " + std::to_string(logical) + " logical CPUs";
    if (!cores.empty()) cpu += " on " + std::to_string(cores.size()) + " cores";
    cpu += ", " + isa + "; " + std::to_string(threads) + " threads used";
    const double gib = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE)) / double(1 << 30);
    char mem[32];
    std::snprintf(mem, sizeof mem, "%.0f GiB", gib);
    std::vector<std::pair<std::string, std::string>> facts{{"CPU", cpu}, {"memory", mem}};
    if (cuda_available()) {
        std::string gpus;
        for (int i = 0; i < cuda_device_count(); i++) gpus += (i ? ", " : "") + cuda_device_name(i);
        facts.push_back({"GPU", gpus + " (" + cuda::versions() + ")"});
    } else {
        facts.push_back({"GPU", cuda_built() ? "none found (dyad has its CUDA backend: " + cuda::built_versions() +
                                                   "; no usable GPU or driver)"
                                             : "none used (this build of dyad has no CUDA backend)"});
    }
    return facts;
}

std::string today() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
    return buf;
}

// ---------------------------------------------------------------------------- options
std::vector<std::string> choose_backends(const std::vector<std::string>& devices, bool gpu_found, bool cuda_built,
                                         std::string* note) {
    const std::string why = cuda_built ? "no GPU was found (no usable CUDA device or driver on this machine)"
                                       : "no GPU can be used: this build of dyad has no CUDA backend (built without "
                                         "the CUDA toolkit, or with DYAD_WITH_CUDA=OFF)";
    std::string told;
    std::vector<std::string> backends = devices;
    if (backends.empty()) {
        backends = {"cpu"};
        if (gpu_found)
            backends.push_back("cuda");
        else
            told = "training on the CPU only, so the report has no GPU column: " + why + "\n";
    }
    const bool wants_cuda = std::find(backends.begin(), backends.end(), "cuda") != backends.end();
    if (wants_cuda && !gpu_found) {
        backends.erase(std::remove(backends.begin(), backends.end(), "cuda"), backends.end());
        DYAD_CHECK(!backends.empty(), "dyad-tinyimagenet: --device cuda: ", why,
                   ". Train on the CPU instead with --device cpu");
        told = "cuda: skipped: " + why + "; training on " + join(backends, ",") + " only\n";
    }
    if (note) *note = told;
    return backends;
}

double effective_lr(const Options& o) { return o.lr > 0 ? o.lr : o.optimizer == "adamw" ? 1e-3 : 0.05; }
double effective_weight_decay(const Options& o) {
    return o.weight_decay >= 0 ? o.weight_decay : o.optimizer == "adamw" ? 0.05 : 5e-4;
}

void apply_data_defaults(Options* o, const std::string& data_name) {
    const bool generated = data_name == "generated";
    if (o->epochs == 0) o->epochs = data_name == "Fashion-MNIST" ? 3 : generated ? 5 : 30;
    // The generated set has 600 training images: batches of 128 made 5 steps an epoch, and SGD at Fashion-MNIST's
    // lr 0.05 (tuned for 469 steps an epoch) overshot in those few large steps, the training loss itself jumping
    // back up (validation top-1 0.37, 0.475, 0.15, 0.445, 0.35). Batches of 32 (19 steps an epoch) at lr 0.01
    // rise steadily (0.435, 0.47, 0.655, 0.90, 0.905; seeds 2 and 3 alike); AdamW also gains from the steps.
    if (o->batch_size == 0) o->batch_size = generated ? 32 : 128;
    if (o->lr <= 0 && o->optimizer == "sgd" && generated) o->lr = 0.01;
}

// ---------------------------------------------------------------------------- data and model
std::string image_sizes(int64_t channels, int64_t stored, int64_t input) {
    std::ostringstream os;
    os << "stored " << stored << "x" << stored << ", network input " << channels << "x" << input << "x" << input;
    if (input != stored) os << (input > stored ? " (padded)" : " (cropped)");
    return os.str();
}

TrainData load_data(const Options& o, std::string* log) {
    TrainData d;
    std::ostringstream msg;
    namespace fs = std::filesystem;
    const bool fashion_dir = !o.data.empty() && o.data != "generated" &&
                             (fs::exists(fs::path(o.data) / "train-images-idx3-ubyte.gz") ||
                              fs::exists(fs::path(o.data) / "train-images-idx3-ubyte"));
    if (o.data.empty() || fashion_dir) {
        d.name = "Fashion-MNIST";
        d.split = fashion_dir ? data::load_fashion_mnist(o.data) : data::load_fashion_mnist();
        // 28x28 images into a 32x32 network, centred with 2 pixels of padding. Training flips only: in a
        // 3-epoch run, random shifts cost more than they give (validation top-1 0.889 with shifts of up to
        // 2 pixels, 0.905 without).
        d.image_size = 32;
        d.mean = {0.2860f};
        d.std = {0.3530f};
        d.train_augment.pad = 2;
        d.train_augment.crop = false;
        d.train_augment.flip = true;
        d.eval_augment.pad = 2;
    } else {
        data::TinyImageNetOptions to;
        to.threads = o.threads;
        std::string root = o.data;
        if (o.data == "generated") {
            root = (std::filesystem::path(o.out) / "generated-data").string();
            if (!std::filesystem::exists(std::filesystem::path(root) / "wnids.txt")) {
                msg << "writing a generated data set (10 classes, 64x64) to " << root << "\n";
                data::write_generated_tiny_imagenet(root, 10, 60, 20, o.seed);
            }
            d.name = "generated";
            d.mean = {0.5f, 0.5f, 0.5f};
            d.std = {0.25f, 0.25f, 0.25f};
        } else {
            d.name = "Tiny ImageNet";
            d.mean = {0.480f, 0.448f, 0.398f};
            d.std = {0.277f, 0.269f, 0.282f};
        }
        to.limit_train = o.limit_train;
        to.limit_val = o.limit_val;
        data::LoadReport rep;
        d.split = data::load_tiny_imagenet(root, to, &rep);
        msg << rep.summary() << "\n";
        d.image_size = d.split.train.height();
        d.train_augment.pad = 4;
        d.train_augment.crop = true;
        d.train_augment.flip = true;
    }
    if (o.limit_train > 0) d.split.train = d.split.train.head(o.limit_train);
    if (o.limit_val > 0) d.split.val = d.split.val.head(o.limit_val);
    for (ImageAugment* a : {&d.train_augment, &d.eval_augment}) a->out_h = a->out_w = d.image_size;
    msg << d.name << ": " << d.split.train.size() << " training and " << d.split.val.size() << " validation images, "
        << d.split.train.classes() << " classes; "
        << image_sizes(d.split.train.channels(), d.split.train.height(), d.image_size) << "\n";
    if (log) *log = msg.str();
    return d;
}

std::shared_ptr<nn::Module> make_model(const std::string& name, int64_t classes, int64_t channels, int64_t size) {
    if (name == "resnet18") return models::resnet18_small(classes, channels);
    return models::baseline_cnn(classes, channels, size);
}

// ---------------------------------------------------------------------------- one backend
namespace {

struct Evaluation {
    double loss = 0, top1 = 0, top5 = 0;
};

// Loss, top-1 and top-5 over the loader's batches (the first max_batches of them when it is above 0). Under
// mpirun each rank evaluates its share (the loader's rank and world_size, no shuffle) and the sums are
// reduced over the ranks; the images a share repeats to make the shares equal (the sampler's padding,
// global positions >= dataset_size) are left out, so every image counts once, as in one process.
// A batch's images in the run's memory format (--memory-format): channels_last images make every layer after
// them run its NHWC kernels.
// A batch of images as the model takes them: in its memory format, and as bfloat16 in the bf16 mode (the
// whole network then runs on bfloat16 activations; Conv2d and Linear use bfloat16 copies of their float32
// weights, batch norm keeps float32 statistics, and cross_entropy computes in float32).
struct InputMode {
    bool channels_last = false;
    bool bf16 = false;
};
Tensor images_in(const Tensor& x, InputMode m) {
    const Tensor laid = m.channels_last ? x.contiguous(MemoryFormat::channels_last) : x;
    return m.bf16 ? laid.to(DType::bfloat16) : laid;
}

Evaluation evaluate(nn::Module& model, data::Loader& loader, InputMode mode, int64_t max_batches = 0,
                    int64_t dataset_size = 0) {
    NoGradGuard ng;
    model.eval();
    loader.start_epoch(0);
    data::Batch b;
    const int rank = dist::rank(), world = dist::world_size();
    double loss_sum = 0;
    int64_t n = 0, top1 = 0, top5 = 0, local = 0;  // local: this rank's position in its share
    for (int64_t batch = 0; (max_batches <= 0 || batch < max_batches) && loader.next(b); batch++) {
        const Tensor logits = model(images_in(b.x, mode)).to(DType::float32);
        // The padding is at the end of a share: this batch's first `bs` rows are real images.
        int64_t bs = b.x.size(0);
        if (world > 1 && dataset_size > 0)
            while (bs > 0 && rank + (local + bs - 1) * world >= dataset_size) bs--;
        local += b.x.size(0);
        if (bs == 0) continue;
        const Tensor lg = bs == b.x.size(0) ? logits : logits.slice(0, 0, bs);
        const Tensor yb = bs == b.x.size(0) ? b.y : b.y.slice(0, 0, bs);
        loss_sum += cross_entropy(lg, yb).item() * double(bs);
        const std::vector<float> l = lg.to(Device::cpu()).contiguous().to_vector<float>();
        const std::vector<int32_t> y = yb.to(Device::cpu()).contiguous().to_vector<int32_t>();
        const int64_t c = logits.size(1);
        for (int64_t i = 0; i < bs; i++) {
            const float* row = l.data() + i * c;
            const float target = row[y[size_t(i)]];
            int64_t better = 0;  // classes scored above the true one
            for (int64_t j = 0; j < c; j++) better += row[j] > target;
            top1 += better == 0;
            top5 += better < 5;
        }
        n += bs;
    }
    model.train();
    if (world > 1) {
        loss_sum = dist::all_reduce(loss_sum);
        n = int64_t(dist::all_reduce(double(n)));
        top1 = int64_t(dist::all_reduce(double(top1)));
        top5 = int64_t(dist::all_reduce(double(top5)));
    }
    Evaluation e;
    if (n > 0) e = {loss_sum / double(n), double(top1) / double(n), double(top5) / double(n)};
    return e;
}

struct RunState {
    int first_epoch = 0;  // 0-based epoch to continue with
    int64_t first_step = 0;
};

// Training statistics of an epoch in progress; a checkpoint taken mid-epoch carries them, so a resumed
// epoch reports the same loss and accuracy as an uninterrupted one.
struct EpochProgress {
    double loss_sum = 0, seconds = 0;
    int64_t seen = 0, correct = 0, images = 0;
};

// The last state known to be good: parameters, buffers and optimizer state that produced only finite
// losses and are finite themselves, with where training stood. Taken in memory every time the losses are
// read (every 16 steps), so a divergence can be rolled back to it and saved as a resumable checkpoint.
struct GoodState {
    std::vector<Tensor> model;  // state_dict() order
    std::vector<std::pair<std::string, Tensor>> optimizer;
    int64_t optimizer_steps = 0;
    double lr = 0;
    RngState rng{};
    int epoch = 0;  // 0-based epoch in progress
    int64_t step = 0;
    EpochProgress progress;
};

GoodState snapshot(const nn::Module& model, const optim::Optimizer& opt, int epoch, int64_t step,
                   const EpochProgress& progress) {
    GoodState g;
    for (const auto& [name, t] : model.state_dict()) g.model.push_back(t.clone());
    for (const auto& [name, t] : opt.state_dict()) g.optimizer.push_back({name, t.clone()});
    g.optimizer_steps = opt.step_count();
    g.lr = opt.lr();
    g.rng = rng_state();
    g.epoch = epoch, g.step = step, g.progress = progress;
    return g;
}

void restore(const GoodState& g, nn::Module& model, optim::Optimizer& opt) {
    NoGradGuard ng;
    const nn::NamedTensors state = model.state_dict();
    for (size_t i = 0; i < state.size(); i++) {
        Tensor t = state[i].second;
        t.copy_(g.model[i]);
    }
    opt.load_state_dict(g.optimizer, g.optimizer_steps);
    opt.set_lr(g.lr);
    set_rng_state(g.rng);
}

// The first parameter, and the first gradient, holding a NaN or an infinity ("none" when all are finite).
std::string first_nonfinite(const nn::Module& model) {
    std::string param = "none", grad = "none";
    for (const auto& [name, p] : model.named_parameters()) {
        if (param == "none" && !all_finite(p)) param = name;
        if (grad == "none" && p.grad().defined() && !all_finite(p.grad())) grad = name;
    }
    return "first non-finite parameter: " + param + ", first non-finite gradient: " + grad;
}

std::string exact(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::vector<double> parse_numbers(const std::string& text, size_t expected, const std::string& what) {
    std::istringstream in(text);
    std::vector<double> v;
    double x;
    while (in >> x) v.push_back(x);
    DYAD_CHECK(in.eof() && v.size() == expected, "dyad-tinyimagenet: checkpoint entry '", what, "' holds '", text,
               "', expected ", expected, " numbers");
    return v;
}

std::string encode_progress(const EpochProgress& p) {
    return exact(p.loss_sum) + " " + exact(p.seconds) + " " + std::to_string(p.seen) + " " + std::to_string(p.correct) +
           " " + std::to_string(p.images);
}

EpochProgress decode_progress(const std::string& text) {
    const std::vector<double> v = parse_numbers(text, 5, "progress");
    return {v[0], v[1], int64_t(v[2]), int64_t(v[3]), int64_t(v[4])};
}

// One backend's finished epochs, a line each, so that a resumed run's metrics and charts start at epoch 1.
std::string encode_history(const std::vector<EpochMetrics>& epochs, const std::string& backend) {
    std::string out;
    for (const EpochMetrics& m : epochs) {
        if (m.backend != backend) continue;
        out += std::to_string(m.epoch) + " " + exact(m.train_loss) + " " + exact(m.train_acc) + " " +
               exact(m.val_loss) + " " + exact(m.val_top1) + " " + exact(m.val_top5) + " " + exact(m.seconds) + " " +
               exact(m.img_per_s) + "\n";
    }
    return out;
}

std::vector<EpochMetrics> decode_history(const std::string& text, const std::string& backend) {
    std::vector<EpochMetrics> out;
    for (const std::string& line : split_list(text, '\n')) {
        if (line.empty()) continue;
        const std::vector<double> v = parse_numbers(line, 8, "history");
        EpochMetrics m;
        m.backend = backend;
        m.epoch = int(v[0]);
        m.train_loss = v[1], m.train_acc = v[2], m.val_loss = v[3], m.val_top1 = v[4], m.val_top5 = v[5];
        m.seconds = v[6], m.img_per_s = v[7];
        out.push_back(m);
    }
    return out;
}

}  // namespace

// Records the input of every call of a leaf module (one without children) during a forward pass.
namespace {
class LeafInputs : public nn::ForwardRecorder {
public:
    void record(nn::Module& module, const Tensor& input, const Tensor& /*output*/) override {
        if (module.children().empty()) calls.push_back({&module, input.detach()});
    }
    std::vector<std::pair<nn::Module*, Tensor>> calls;
};
}  // namespace

std::vector<LayerTime> profile_layers(nn::Module& model, const Tensor& x, Device dev, int reps) {
    auto wait = [&] {
        if (dev.is_cuda()) synchronize();
    };
    std::vector<std::pair<std::string, Tensor>> saved;
    for (auto& [name, t] : model.named_buffers()) saved.push_back({name, t.clone()});
    std::map<const nn::Module*, std::string> names;
    for (auto& [name, m] : model.named_modules()) names[m] = name.empty() ? "(model)" : name;

    LeafInputs leaves;
    {
        nn::RecorderScope scope(&leaves);
        NoGradGuard ng;
        model(x);
    }

    // Mean forward and backward milliseconds of `fn` over `reps` runs after one warm-up run.
    auto time = [&](const std::function<Tensor(const Tensor&)>& fn, const Tensor& input, LayerTime* t) {
        for (int r = -1; r < reps; r++) {
            const Tensor in = input.detach().requires_grad_();
            wait();
            const auto t0 = Clock::now();
            const Tensor y = fn(in);
            wait();
            const auto t1 = Clock::now();
            y.backward(Tensor::ones(y.shape(), y.dtype(), y.device()));
            wait();
            const auto t2 = Clock::now();
            if (r >= 0) {
                t->forward_ms += std::chrono::duration<double, std::milli>(t1 - t0).count() / reps;
                t->backward_ms += std::chrono::duration<double, std::milli>(t2 - t1).count() / reps;
            }
        }
    };

    std::vector<LayerTime> out;
    std::map<const nn::Module*, int> calls;
    for (const auto& recorded : leaves.calls) {
        nn::Module* layer = recorded.first;  // not a structured binding: lambdas capture it (C++17)
        const Tensor& input = recorded.second;
        LayerTime t;
        const int call = ++calls[layer];
        t.layer = names[layer] + " " + layer->type_name() +
                  (layer->extra_repr().empty() ? "" : "(" + layer->extra_repr() + ")") +
                  (call > 1 ? " call " + std::to_string(call) : "");
        time([&](const Tensor& in) { return (*layer)(in); }, input, &t);
        out.push_back(t);
    }
    LayerTime whole;
    whole.layer = "whole model";
    time([&](const Tensor& in) { return model(in); }, x, &whole);
    out.push_back(whole);

    model.zero_grad();
    NoGradGuard ng;
    const auto buffers = model.named_buffers();
    for (size_t i = 0; i < buffers.size(); i++) {
        Tensor b = buffers[i].second;
        b.copy_(saved[i].second);
    }
    return out;
}

// ---------------------------------------------------------------------------- the study
Report run(const Options& options, const std::atomic<bool>* stop) {
    Options o = options;
    if (o.threads > 0) set_num_threads(o.threads);
    set_precision(parse_precision(o.precision));
    set_cpu_conv_algorithm(parse_cpu_conv_algorithm(o.cpu_conv));
    // Under mpirun: data-parallel over the ranks. Rank 0 (the lead) prints and writes every file; every rank
    // trains its share of each global batch and takes part in the collectives.
    const int world = dist::world_size(), rank = dist::rank();
    const bool lead = rank == 0;
    if (lead) std::filesystem::create_directories(o.out);
    auto say = [&](const std::string& s) {
        if (!o.quiet && lead) std::printf("%s", s.c_str()), std::fflush(stdout);
    };
    std::string note;
    std::vector<std::string> backends = choose_backends(o.devices, cuda_available(), cuda_built(), &note);
    if (world > 1 && !dist::nccl_built() && std::find(backends.begin(), backends.end(), "cuda") != backends.end()) {
        backends.erase(std::remove(backends.begin(), backends.end(), "cuda"), backends.end());
        DYAD_CHECK(!backends.empty(),
                   "dyad-tinyimagenet: --device cuda under mpirun: this build has no NCCL for GPU "
                   "ranks (cmake's 'dyad: NCCL' line says why); train the ranks on the CPU with "
                   "--device cpu");
        note += "cuda: skipped under mpirun: this build has no NCCL for GPU ranks; training on " + join(backends, ",") +
                "\n";
    }
    std::string log;
    // The lead loads first: it may write the generated set or a cache that the other ranks then read.
    if (world > 1 && !lead) dist::barrier();
    const TrainData d = load_data(o, &log);
    if (world > 1 && lead) dist::barrier();
    say(log + note);

    // Every default resolved, so that OUT/config.toml repeats this run exactly (the thread count included:
    // the convolution's filter gradient is summed per thread).
    apply_data_defaults(&o, d.name);
    o.lr = effective_lr(o);
    o.weight_decay = effective_weight_decay(o);
    Options resolved = o;
    resolved.devices = backends;
    resolved.threads = num_threads();
    std::string config;
    try {
        config = config_text(resolved);
    } catch (const Error& e) {  // a value CLI11's reader would not read back: the run goes on without the file
        say(std::string("config.toml not written: ") + e.what() + "\n");
    }
    if (!config.empty() && lead)
        io::write_file_atomic((std::filesystem::path(o.out) / "config.toml").string(), config, "dyad-tinyimagenet");

    DYAD_CHECK(o.batch_size % world == 0, "dyad-tinyimagenet: --batch-size ", o.batch_size,
               " is the global batch, split evenly over the ", world, " ranks: use a multiple of ", world);
    const int64_t rank_batch = o.batch_size / world;
    if (world > 1)
        say("data-parallel over " + std::to_string(world) + " ranks: global batch " + std::to_string(o.batch_size) +
            " = " + std::to_string(world) + " x " + std::to_string(rank_batch) + " per rank" +
            (o.sync_bn ? ", synchronised batch norm" : "") + "\n");
    const int64_t classes = d.split.train.classes(), channels = d.split.train.channels();
    Report report;
    report.title = o.model + " on " + d.name;
    {
        manual_seed(o.seed);
        auto probe = make_model(o.model, classes, channels, d.image_size);
        report.facts = {
            {"data", d.name + " (" + std::to_string(d.split.train.size()) + " train, " +
                         std::to_string(d.split.val.size()) + " val, " + std::to_string(classes) + " classes)"},
            {"images", image_sizes(channels, d.split.train.height(), d.image_size)},
            {"model",
             o.model + ", " + std::to_string(probe->num_parameters()) + " parameters, activations " + o.memory_format},
            {"training", std::to_string(o.epochs) + " epochs, batch " + std::to_string(o.batch_size) + ", " +
                             (o.optimizer == "adamw" ? "AdamW" : "SGD") + " lr " + std::to_string(effective_lr(o)) +
                             (o.optimizer == "adamw" ? "" : " momentum " + std::to_string(o.momentum)) +
                             " weight decay " + std::to_string(effective_weight_decay(o)) + ", schedule " + o.schedule +
                             ", seed " + std::to_string(o.seed)},
            {"date", today()}};
        // The machine: CPU (3x3 convolutions' algorithm added), memory, GPU with its driver and libraries.
        for (auto fact : machine_facts(num_threads())) {
            if (fact.first == "CPU") fact.second += ", 3x3 convolutions: " + o.cpu_conv;
            if (fact.first == "GPU" && cuda_available()) fact.second += ", precision " + o.precision;
            report.facts.push_back(fact);
        }
        if (world > 1)
            report.facts.push_back(
                {"ranks", std::to_string(world) + " MPI ranks (" + std::to_string(dist::local_size()) +
                              " on the lead's machine), data-parallel; global batch " + std::to_string(o.batch_size) +
                              " = " + std::to_string(world) + " x " + std::to_string(rank_batch) +
                              (o.sync_bn ? "; synchronised batch norm" : "; per-rank batch norm")});
    }

    data::LoaderOptions lo;
    lo.batch_size = rank_batch;
    lo.rank = rank;
    lo.world_size = world;
    lo.seed = o.seed;
    lo.mean = d.mean;
    lo.std = d.std;

    std::string diverged;  // set when a backend's training diverged
    for (const std::string& backend : backends) {
        BackendGuard guard(backend);
        // GPU ranks: one GPU per rank, picked by the rank's place on its machine.
        const Device dev = backend == "cuda" && world > 1
                               ? Device::cuda(dist::local_rank() % std::max(1, cuda_device_count()))
                               : device_of(backend);
        manual_seed(o.seed);  // identical initial weights for every backend
        auto model = make_model(o.model, classes, channels, d.image_size);
        model->to(dev);
        // channels_last: the convolutions' weights too, so that none is converted at every step.
        if (o.memory_format == "channels_last") model->to(MemoryFormat::channels_last);
        std::unique_ptr<optim::Optimizer> opt_owner;
        if (o.optimizer == "adamw") {
            optim::AdamWOptions ao;
            ao.lr = effective_lr(o);
            opt_owner = std::make_unique<optim::AdamW>(
                optim::decay_groups(model->named_parameters(), effective_weight_decay(o)), ao);
        } else {
            optim::SgdOptions so;
            so.lr = effective_lr(o);
            so.momentum = o.momentum;
            so.weight_decay = effective_weight_decay(o);
            opt_owner = std::make_unique<optim::Sgd>(model->named_parameters(), so);
        }
        optim::Optimizer& opt = *opt_owner;
        std::unique_ptr<optim::LrScheduler> schedule;
        if (o.schedule == "cosine") schedule = std::make_unique<optim::CosineWarmupLr>(opt, 0, o.epochs);
        if (o.schedule == "step") schedule = std::make_unique<optim::StepLr>(opt, std::max(1, o.epochs / 3), 0.1);

        const std::string ckpt = (std::filesystem::path(o.out) / (backend + ".safetensors")).string();
        RunState rs;
        EpochProgress resumed_progress;
        if (!o.resume.empty()) {
            // Weights, optimizer state, step count, lr, and the generator: the run continues exactly.
            io::Metadata meta = io::load(o.resume, *model, &opt, /*restore_rng=*/true);
            DYAD_CHECK(meta.count("backend") && meta.count("epoch"), "dyad-tinyimagenet: ", o.resume,
                       " is not a checkpoint of this program (no backend/epoch entries)");
            if (meta["backend"] != backend) continue;  // the checkpoint continues one backend's run only
            rs.first_epoch = std::stoi(meta["epoch"]);
            rs.first_step = meta.count("step") ? std::stoll(meta["step"]) : 0;
            // The progress of an epoch in progress holds the sums over every rank: the lead carries them on.
            if (meta.count("progress") && rs.first_step > 0 && lead)
                resumed_progress = decode_progress(meta["progress"]);
            const int saved_world = meta.count("world_size") ? std::stoi(meta["world_size"]) : 1;
            if (saved_world != world)
                say(backend + ": the checkpoint was written by " + std::to_string(saved_world) +
                    " rank(s), this run has " + std::to_string(world) +
                    ": training continues from the same global step with the same global batches (the ranks share "
                    "each epoch's order, so a global batch holds the same images for any world size, up to the "
                    "epoch's last, padded one), "
                    "but the random augmentation, per-rank batch-norm statistics and the order of the gradient "
                    "sums differ, so the run is not bit-identical to one that kept " +
                    std::to_string(saved_world) + " rank(s)\n");
            if (meta.count("history"))
                for (const EpochMetrics& m : decode_history(meta["history"], backend)) report.epochs.push_back(m);
            if (schedule)
                for (int e = 0; e < rs.first_epoch; e++) schedule->step();
            // The rate follows this run's --lr and schedule, not the checkpoint's: after a divergence, resuming
            // with a smaller --lr takes effect at once. With the same flags it is the rate the run had.
            opt.set_lr(schedule ? schedule->lr_at(rs.first_epoch) : effective_lr(o));
            say(backend + ": resuming at epoch " + std::to_string(rs.first_epoch + 1) + ", step " +
                std::to_string(rs.first_step) + "\n");
        }

        // Data-parallel: batch norm synchronised when asked, then every rank takes rank 0's weights (after
        // --resume every rank has loaded the same file) and gradients are averaged over the ranks in backward.
        if (o.sync_bn && world > 1) dist::convert_sync_batchnorm(*model);
        std::unique_ptr<dist::DataParallel> dp;
        if (world > 1) dp = std::make_unique<dist::DataParallel>(*model);
        double comm_wait = 0;  // communication backward did not hide, summed over the steps (this rank)

        data::LoaderOptions tlo = lo;
        tlo.device = dev;
        tlo.augment = d.train_augment;
        // The training step, forward to optimizer; it returns the loss and the predictions. On a GPU it is
        // captured in a CUDA graph after two eager steps and replayed (one launch per step); the learning
        // rate is baked into the graph, so its bits are the key's version and a new rate captures afresh.
        // Nothing else may queue GPU work while a step is captured, so the loader makes its batches on this
        // thread then (a kernel and a small copy of indices: the GPU still runs ahead of the host).
        CaptureOptions co;
        co.enabled = o.graph;
        co.max_graphs = 2;  // the full batches and the last, partial one, at the current rate
        if (dev.is_cuda() && o.graph) tlo.prefetch = 0;
        // --precision bf16 runs the GPU's network on bfloat16 activations; CPU runs stay float32.
        const InputMode mode{o.memory_format == "channels_last", dev.is_cuda() && o.precision == "bf16"};
        CapturedStep train_step(
            [&model, &opt, &dp, mode](const std::vector<Tensor>& in) {
                opt.zero_grad();
                const Tensor x = images_in(in[0], mode);
                const Tensor logits = dp ? (*dp)(x) : (*model)(x);
                const Tensor loss = cross_entropy(logits, in[1]);
                loss.backward();
                opt.step();
                return std::vector<Tensor>{loss.detach(), argmax(logits.detach(), 1)};
            },
            co);
        auto lr_version = [&opt] {
            const double lr = opt.lr();
            uint64_t bits = 0;
            std::memcpy(&bits, &lr, sizeof bits);
            return bits;
        };
        bool told_fallback = false;
        data::Loader train(d.split.train, tlo);
        data::LoaderOptions vlo = tlo;
        vlo.shuffle = false;
        vlo.augment = d.eval_augment;
        data::Loader val(d.split.val, vlo);

        int64_t steps_per_epoch =
            o.max_steps > 0 ? std::min(o.max_steps, train.batches_per_epoch()) : train.batches_per_epoch();
        // --naive-steps: a cheap naive column, its training and its validation cut to the same number of batches.
        const bool limited = backend == "naive" && o.naive_steps > 0 && o.naive_steps < steps_per_epoch;
        int64_t val_batches = 0;
        std::string limit_note;
        if (limited) {
            limit_note = "naive: " + std::to_string(o.naive_steps) + " of " + std::to_string(steps_per_epoch) +
                         " training steps per epoch and at most " + std::to_string(o.naive_steps) + " of " +
                         std::to_string(val.batches_per_epoch()) +
                         " validation batches (--naive-steps): its speed and per-layer times are measured, its "
                         "curves are not comparable with the other backends'";
            say(limit_note + "\n");
            steps_per_epoch = o.naive_steps;
            val_batches = o.naive_steps;
        }
        const bool tty = isatty(1) && !o.quiet && lead;
        double train_seconds = 0;
        int64_t train_images = 0;
        for (const EpochMetrics& m : report.epochs)  // epochs before a resumed checkpoint
            if (m.backend == backend)
                train_seconds += m.seconds, train_images += int64_t(m.img_per_s * m.seconds + 0.5);
        bool stopped = false;
        // Every rank calls it at the same point (the progress is summed over the ranks); the lead writes.
        auto save_checkpoint = [&](int epoch_done, int64_t step, EpochProgress progress) {
            if (world > 1) {
                dp->sync_buffers();
                progress.loss_sum = dist::all_reduce(progress.loss_sum);
                progress.seconds = dist::all_reduce(progress.seconds, dist::ReduceOp::max);
                progress.seen = int64_t(dist::all_reduce(double(progress.seen)));
                progress.correct = int64_t(dist::all_reduce(double(progress.correct)));
                progress.images = int64_t(dist::all_reduce(double(progress.images)));
            }
            if (!lead) return;
            io::Metadata meta = {{"backend", backend},
                                 {"world_size", std::to_string(world)},
                                 {"epoch", std::to_string(epoch_done)},
                                 {"step", std::to_string(step)},
                                 {"progress", encode_progress(progress)},
                                 {"history", encode_history(report.epochs, backend)},
                                 {"model", o.model},
                                 {"classes", std::to_string(classes)},
                                 {"channels", std::to_string(channels)},
                                 {"image_size", std::to_string(d.image_size)},
                                 {"stored_size", std::to_string(d.split.train.height())},
                                 {"mean", join(
                                              [&] {
                                                  std::vector<std::string> v;
                                                  for (float m : d.mean) v.push_back(std::to_string(m));
                                                  return v;
                                              }(),
                                              ",")},
                                 {"std", join(
                                             [&] {
                                                 std::vector<std::string> v;
                                                 for (float s : d.std) v.push_back(std::to_string(s));
                                                 return v;
                                             }(),
                                             ",")},
                                 {"class_names", join(d.split.train.class_names, "\n")}};
            io::save(ckpt, *model, &opt, meta);
        };

        GoodState good = snapshot(*model, opt, rs.first_epoch, rs.first_step, resumed_progress);
        for (int epoch = rs.first_epoch; epoch < o.epochs && !stopped; epoch++) {
            train.start_epoch(epoch);
            data::Batch b;
            const int64_t skip = epoch == rs.first_epoch ? rs.first_step : 0;
            for (int64_t s = 0; s < skip && train.next(b); s++) {
            }
            // Losses and predictions stay on the device and are read every few steps, so the GPU is not
            // made to wait after every step.
            std::vector<Tensor> pending_loss, pending_pred, pending_y;
            std::vector<int64_t> pending_step;
            const EpochProgress before = skip > 0 ? resumed_progress : EpochProgress{};
            double loss_sum = before.loss_sum;
            int64_t seen = before.seen, correct = before.correct;
            const auto t0 = Clock::now();
            auto last_print = t0;
            int64_t step = skip, images = before.images;
            // Reads the pending losses and predictions. A NaN or infinite loss, or a parameter that is no
            // longer finite, stops training: the model and optimizer go back to the last good state, which is
            // saved as a resumable checkpoint, and the run ends with an error naming the step. Otherwise the
            // current state becomes the last good one. Returns false on divergence.
            auto flush = [&] {
                std::string bad;
                for (size_t i = 0; i < pending_loss.size() && bad.empty(); i++) {
                    const double l = pending_loss[i].item();
                    if (!std::isfinite(l)) {
                        bad = std::string("the training loss is ") +
                              (std::isnan(l) ? "NaN"
                               : l > 0       ? "+inf"
                                             : "-inf") +
                              " at epoch " + std::to_string(epoch + 1) + ", step " + std::to_string(pending_step[i]);
                        break;
                    }
                    const int64_t bs = pending_y[i].size(0);
                    loss_sum += l * double(bs);
                    const std::vector<int32_t> p = pending_pred[i].to(Device::cpu()).to_vector<int32_t>();
                    const std::vector<int32_t> y = pending_y[i].to(Device::cpu()).to_vector<int32_t>();
                    for (size_t j = 0; j < p.size(); j++) correct += p[j] == y[j];
                    seen += bs;
                }
                pending_loss.clear(), pending_pred.clear(), pending_y.clear(), pending_step.clear();
                if (bad.empty()) {
                    for (const auto& [name, p] : model->named_parameters())
                        if (!all_finite(p)) {
                            bad = "parameter " + name + " is not finite after epoch " + std::to_string(epoch + 1) +
                                  ", step " + std::to_string(step);
                            break;
                        }
                }
                if (world > 1) {
                    // Every rank rolls back together: the ranks' losses differ, so one may diverge alone.
                    const double first_bad =
                        dist::all_reduce(bad.empty() ? 0.0 : double(rank + 1), dist::ReduceOp::max);
                    if (bad.empty() && first_bad > 0)
                        bad = "rank " + std::to_string(int(first_bad) - 1) +
                              " saw a non-finite loss or parameter at epoch " + std::to_string(epoch + 1) + ", step " +
                              std::to_string(step);
                }
                if (bad.empty()) {
                    good = snapshot(*model, opt, epoch, step,
                                    {loss_sum, before.seconds + seconds_since(t0), seen, correct, images});
                    return true;
                }
                const std::string where = first_nonfinite(*model);
                char lr[32];
                std::snprintf(lr, sizeof lr, "%g", opt.lr());
                restore(good, *model, opt);
                train_step.reset();  // the optimizer's buffers were replaced: the graphs would write the old ones
                save_checkpoint(good.epoch, good.step, good.progress);
                diverged = backend + ": training diverged: " + bad + " (learning rate " + lr + "); " + where +
                           ". The last good state (epoch " + std::to_string(good.epoch + 1) + ", step " +
                           std::to_string(good.step) + ") is saved in " + ckpt +
                           ": resume from it with --resume and a smaller --lr";
                say("\n" + diverged + "\n");
                stopped = true;
                return false;
            };
            while (step < steps_per_epoch && train.next(b)) {
                const std::vector<Tensor> out = train_step({b.x, b.y}, lr_version());
                if (train_step.last_replayed()) opt.add_replayed_steps(1);
                if (dp) comm_wait += dp->last_wait_seconds();
                if (!train_step.fallback_reason().empty() && !told_fallback) {
                    say(backend + ": " + train_step.fallback_reason() + "\n");
                    told_fallback = true;
                }
                pending_loss.push_back(out[0]);
                pending_pred.push_back(out[1]);
                pending_y.push_back(b.y);
                images += b.x.size(0);
                step++;
                pending_step.push_back(step);
                if ((pending_loss.size() >= 16 || step == steps_per_epoch) && !flush()) break;
                const double elapsed = seconds_since(t0);
                // On a terminal the progress line is redrawn four times a second; otherwise (a log file) a plain
                // line is written at each quarter of the epoch.
                const bool quarter = (step * 4 / steps_per_epoch) != ((step - 1) * 4 / steps_per_epoch);
                const bool show = tty ? seconds_since(last_print) > 0.25 || step == steps_per_epoch
                                      : !o.quiet && lead && quarter && step < steps_per_epoch;
                if (show && seen > 0) {
                    last_print = Clock::now();
                    // Over every rank (equal shares); the loss and accuracy are the lead's share's so far.
                    const double rate = double(world) * double(images - before.images) / std::max(elapsed, 1e-9);
                    const double eta = double(steps_per_epoch - step) * elapsed / double(step - skip);
                    const std::string line =
                        progress_line(backend, epoch + 1, o.epochs, step, steps_per_epoch, rate,
                                      loss_sum / double(seen), double(correct) / double(seen), eta);
                    std::printf(tty ? "\r%s" : "%s\n", line.c_str());
                    std::fflush(stdout);
                }
                bool stop_now = stop && stop->load();
                if (world > 1)  // every rank stops at the same step (Ctrl-C may reach them at different steps)
                    stop_now = dist::all_reduce(stop_now ? 1.0 : 0.0, dist::ReduceOp::max) > 0;
                if (stop_now) {
                    if (!flush()) break;
                    save_checkpoint(epoch, step, {loss_sum, before.seconds + seconds_since(t0), seen, correct, images});
                    say("\n" + backend + ": interrupted at epoch " + std::to_string(epoch + 1) + ", step " +
                        std::to_string(step) + "; checkpoint " + ckpt + "\n");
                    stopped = true;
                    break;
                }
            }
            if (!stopped) flush();
            if (dev.is_cuda()) synchronize();
            double secs = before.seconds + seconds_since(t0);
            if (tty) std::printf("\n");
            if (stopped) break;
            if (world > 1) {  // the epoch's figures over every rank's share
                loss_sum = dist::all_reduce(loss_sum);
                seen = int64_t(dist::all_reduce(double(seen)));
                correct = int64_t(dist::all_reduce(double(correct)));
                images = int64_t(dist::all_reduce(double(images)));
                secs = dist::all_reduce(secs, dist::ReduceOp::max);
                dp->sync_buffers();  // evaluate rank 0's running statistics on every rank
            }
            train_seconds += secs;
            train_images += images;
            const Evaluation ev = evaluate(*model, val, mode, val_batches, d.split.val.size());
            EpochMetrics m;
            m.backend = backend;
            m.epoch = epoch + 1;
            m.train_loss = seen ? loss_sum / double(seen) : 0;
            m.train_acc = seen ? double(correct) / double(seen) : 0;
            m.val_loss = ev.loss;
            m.val_top1 = ev.top1;
            m.val_top5 = ev.top5;
            m.seconds = secs;
            m.img_per_s = double(images) / std::max(secs, 1e-9);
            report.epochs.push_back(m);
            char line[256];
            std::snprintf(line, sizeof line,
                          "%-5s epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f top-1 %.4f top-5 %.4f  %.1f s  "
                          "%.0f img/s\n",
                          backend.c_str(), m.epoch, o.epochs, m.train_loss, m.train_acc, m.val_loss, m.val_top1,
                          m.val_top5, m.seconds, m.img_per_s);
            say(line);
            if (schedule) schedule->step();
            save_checkpoint(epoch + 1, 0, {});
        }

        BackendSummary bs;
        bs.backend = backend;
        bs.img_per_s = train_seconds > 0 ? double(train_images) / train_seconds : 0;
        int n_epochs = 0;
        for (const EpochMetrics& m : report.epochs)
            if (m.backend == backend) bs.epoch_seconds += m.seconds, bs.final_val_top1 = m.val_top1, n_epochs++;
        if (n_epochs) bs.epoch_seconds /= n_epochs;
        bs.graph_replays = int64_t(train_step.replays());
        bs.graph_fallback = train_step.fallback_reason();
        bs.steps_per_epoch = steps_per_epoch;
        bs.note = limit_note;
        if (o.profile && !stopped) {
            // Every rank profiles (synchronised batch norm is a collective), without gradient all-reduces.
            auto profile = [&] {
                train.start_epoch(0);
                data::Batch b;
                if (train.next(b)) bs.layers = profile_layers(*model, b.x, dev, backend == "naive" ? 1 : 5);
            };
            if (dp) {
                const auto no_sync = dp->no_sync();
                profile();
            } else {
                profile();
            }
        }
        if (world > 1) {
            char line[320];
            std::snprintf(line, sizeof line,
                          "%.0f img/s over %d ranks (%.0f per rank); gradient all-reduce not hidden by backward: "
                          "%.1f%% of rank 0's training time",
                          bs.img_per_s, world, bs.img_per_s / world,
                          train_seconds > 0 ? 100.0 * comm_wait / train_seconds : 0.0);
            report.facts.push_back({backend + " scaling", line});
            say(backend + " scaling: " + line + "\n");
        }
        report.backends.push_back(bs);
        if (stopped) break;
    }

    // The largest difference between backends' training losses at the same epoch (a backend limited by
    // --naive-steps trains on other batches and is left out).
    std::set<std::string> partial;
    for (const BackendSummary& b : report.backends)
        if (!b.note.empty()) partial.insert(b.backend);
    std::map<int, std::pair<double, double>> range;  // epoch -> (min, max)
    for (const EpochMetrics& m : report.epochs) {
        if (partial.count(m.backend)) continue;
        auto it = range.find(m.epoch);
        if (it == range.end())
            range[m.epoch] = {m.train_loss, m.train_loss};
        else
            it->second = {std::min(it->second.first, m.train_loss), std::max(it->second.second, m.train_loss)};
    }
    for (const auto& [e, mm] : range)
        report.max_curve_difference = std::max(report.max_curve_difference, mm.second - mm.first);

    if (lead) {
        write_metrics_csv((std::filesystem::path(o.out) / "metrics.csv").string(), report.epochs);
        write_metrics_json((std::filesystem::path(o.out) / "metrics.json").string(), report);
        write_charts(o.out, report.epochs);
        write_report_html((std::filesystem::path(o.out) / "report.html").string(), report);
    }
    say("\n" + comparison_table(report));
    if (o.profile) say("\n" + layer_table(report));
    say("\nwrote " + o.out + "/{metrics.csv, metrics.json, loss.svg, accuracy.svg, report.html}\n");
    if (!diverged.empty()) throw Error(diverged);
    return report;
}

// ---------------------------------------------------------------------------- predict
std::string predict(const std::string& checkpoint, const std::vector<std::string>& images) {
    io::Metadata meta;
    io::load_tensors(checkpoint, &meta);
    for (const char* key : {"model", "classes", "channels", "image_size", "stored_size", "mean", "std"})
        DYAD_CHECK(meta.count(key), "predict: ", checkpoint, " has no '", key,
                   "' entry: not a checkpoint written by dyad-tinyimagenet");
    const int64_t classes = std::stoll(meta["classes"]), channels = std::stoll(meta["channels"]);
    const int64_t size = std::stoll(meta["image_size"]), stored = std::stoll(meta["stored_size"]);
    auto model = make_model(meta["model"], classes, channels, size);
    io::load(checkpoint, *model);
    model->eval();
    std::vector<std::string> names = split_list(meta["class_names"], '\n');
    std::vector<float> mean, stdv;
    for (const std::string& s : split_list(meta["mean"], ',')) mean.push_back(std::stof(s));
    for (const std::string& s : split_list(meta["std"], ',')) stdv.push_back(std::stof(s));
    std::ostringstream out;
    out << checkpoint << ": " << meta["model"] << ", " << classes << " classes; " << image_sizes(channels, stored, size)
        << "\n";
    NoGradGuard ng;
    for (const std::string& path : images) {
        // A photo of any size: the shorter side scaled to the stored size, then the centre kept.
        const data::Image file = data::decode_image_file(path, int(channels));
        const data::Image img = data::resize_and_crop(file, stored);
        const Tensor pixels = Tensor::from_vector(std::vector<uint8_t>(img.pixels), {1, img.h, img.w, img.c});
        ImageAugment aug;
        aug.out_h = aug.out_w = size;
        aug.pad = (size - stored + 1) / 2;
        const Tensor x = image_batch(pixels, Tensor::zeros({1}, DType::int32), mean, stdv, aug, 0);
        const std::vector<float> p = softmax((*model)(x), 1).to_vector<float>();
        std::vector<int64_t> order(p.size());
        for (size_t i = 0; i < order.size(); i++) order[i] = int64_t(i);
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
        out << path;
        if (file.h != stored || file.w != stored)
            out << " (" << file.w << "x" << file.h << ", resized to the stored " << stored << "x" << stored
                << ": shorter side scaled, centre cropped)";
        out << "\n";
        for (size_t k = 0; k < std::min<size_t>(5, order.size()); k++) {
            const int64_t c = order[k];
            char line[256];
            std::snprintf(line, sizeof line, "  %5.1f%%  %s\n", 100.0 * p[size_t(c)],
                          size_t(c) < names.size() ? names[size_t(c)].c_str() : std::to_string(c).c_str());
            out << line;
        }
    }
    return out.str();
}

}  // namespace dyad::trainer
