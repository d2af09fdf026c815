// dyad-tinyimagenet's command line, on CLI11: the training flags, the `predict` subcommand, `--config FILE`
// (CLI11's TOML reader; config_text writes the same format) and a check of every value. One list of options
// serves the parser, the help text and the configuration a run writes; errors name the flag and the value.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "trainer.h"

namespace dyad::trainer {

namespace {

constexpr const char* kProgram = "dyad-tinyimagenet";

// The shortest decimal text that reads back as exactly `v`.
std::string exact_text(double v) {
    char buf[40];
    for (int digits = 6; digits <= 17; digits++) {
        std::snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

std::string join_list(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); i++) out += (i ? "," : "") + v[i];
    return out;
}

// Help text broken into lines of at most kTextWidth characters (CLI11 indents the lines after the first).
constexpr size_t kNameWidth = 26, kTextWidth = 52;
std::string wrap(const std::string& text) {
    std::string out, line, word;
    std::istringstream words(text);
    while (words >> word) {
        if (!line.empty() && line.size() + 1 + word.size() > kTextWidth) out += line + "\n", line.clear();
        line += (line.empty() ? "" : " ") + word;
    }
    return out + line;
}

// A check of a number flag: the whole text must be a number (a whole one when `whole`), at least `min`, or
// above it when `strict`. Returns CLI11's form: "" when the value passes, else what is wrong with it.
CLI::Validator number(bool whole, double min, bool strict) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            const char* begin = text.c_str();
            char* end = nullptr;
            const double v = whole ? double(std::strtoll(begin, &end, 10)) : std::strtod(begin, &end);
            const bool parsed = !text.empty() && end == begin + text.size() && std::isfinite(v);
            const std::string kind = whole ? "a whole number" : "a number";
            const std::string bound = (strict ? " above " : " of at least ") + exact_text(min);
            if (!parsed) return "expects " + kind + bound + ", got '" + text + "'";
            if (v < min || (strict && v == min)) return "expects " + kind + bound + ", got " + text;
            return "";
        },
        "", "number");
}

CLI::Validator one_of(const std::vector<std::string>& names) {
    return CLI::Validator(
        [names](std::string& text) -> std::string {
            for (const std::string& n : names)
                if (text == n) return "";
            std::string list;
            for (size_t i = 0; i < names.size(); i++)
                list += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
            return "expects " + list + ", got '" + text + "'";
        },
        "", "one of");
}

// --epochs: 0 means "the data set's default" inside Options, so an explicit 0 on the command line would
// silently train for another number of epochs: refused, saying how to get the default.
CLI::Validator epochs_check() {
    const CLI::Validator at_least_one = number(true, 1, false);
    return CLI::Validator(
        [at_least_one](std::string& text) -> std::string {
            if (text == "0")
                return "expects a number of epochs of at least 1, got 0; leave --epochs out for the data set's "
                       "default (3 on Fashion-MNIST, 5 on generated, 30 on Tiny ImageNet)";
            return at_least_one(text);
        },
        "", "epochs");
}

// Adds a flag bound to `value`; the configuration written by config_text shows `show()`.
template <typename T>
CLI::Option* add(CLI::App& app, const std::string& name, T& value, const std::string& type,
                 const std::string& description, std::function<std::string()> show) {
    CLI::Option* opt = app.add_option(name, value, wrap(description));
    opt->type_name(type);
    opt->default_function(std::move(show));
    return opt;
}

// Every training flag, bound to the fields of `o`.
void add_training_options(CLI::App& app, Options& o) {
    auto whole = [](const auto& v) { return [&v] { return std::to_string(v); }; };
    auto real = [](const double& v) { return [&v] { return exact_text(v); }; };
    auto text = [](const std::string& v) { return [&v] { return v; }; };

    add(app, "--data", o.data, "DIR|generated",
        "a tiny-imagenet-200 folder, a folder of Fashion-MNIST's IDX files, or 'generated' (a small set in Tiny "
        "ImageNet's layout, written to OUT/generated-data). Default: Fashion-MNIST, installed by scripts/setup.sh",
        text(o.data));
    add(app, "--device", o.devices, "LIST",
        "backends, comma-separated: cpu (the OpenMP kernels), cuda (the GPU), naive (the reference kernels, "
        "about 20 times slower than cpu: 2 epochs of Fashion-MNIST on cpu,naive take about 9 minutes on 2 "
        "cores; see --naive-steps). Default: cpu, plus cuda when a GPU is found",
        [&o] { return join_list(o.devices); })
        ->delimiter(',')
        ->check(one_of({"cpu", "cuda", "naive"}));
    add(app, "--naive-steps", o.naive_steps, "N",
        "at most N training steps per epoch, and N validation batches, on the naive backend: a cheap naive "
        "column (its speed and per-layer times; its curves are then not comparable). Default 0: all",
        whole(o.naive_steps))
        ->check(number(true, 0, false));
    add(app, "--model", o.model, "NAME", "baseline | resnet18 (default baseline)", text(o.model))
        ->check(one_of({"baseline", "resnet18"}));
    add(app, "--epochs", o.epochs, "N",
        "epochs, at least 1. Default: 3 on Fashion-MNIST, 5 on generated, 30 on Tiny ImageNet", whole(o.epochs))
        ->check(epochs_check());
    add(app, "--batch-size", o.batch_size, "N",
        "images per training step, at least 1. Default: 32 on generated, 128 otherwise", whole(o.batch_size))
        ->check(number(true, 1, false));
    add(app, "--optimizer", o.optimizer, "NAME", "sgd | adamw (default sgd)", text(o.optimizer))
        ->check(one_of({"sgd", "adamw"}));
    add(app, "--lr", o.lr, "X", "learning rate, above 0. Default: 0.05 with sgd (0.01 on generated), 0.001 with adamw",
        real(o.lr))
        ->check(number(false, 0, true));
    add(app, "--momentum", o.momentum, "X", "SGD's momentum (default 0.9; AdamW's beta1 is 0.9)", real(o.momentum))
        ->check(number(false, 0, false));
    add(app, "--weight-decay", o.weight_decay, "X",
        "weight decay, at least 0. Default: 5e-4 with sgd; 0.05 with adamw, biases and batch norm exempt",
        real(o.weight_decay))
        ->check(number(false, 0, false));
    add(app, "--schedule", o.schedule, "NAME",
        "learning-rate schedule per epoch: cosine | step | none (default cosine)", text(o.schedule))
        ->check(one_of({"cosine", "step", "none"}));
    add(app, "--seed", o.seed, "N", "seeds the weights, the shuffling and the augmentation (default 1)", whole(o.seed))
        ->check(number(true, 0, false));
    add(app, "--threads", o.threads, "N", "CPU threads (default 0: all cores)", whole(o.threads))
        ->check(number(true, 0, false));
    add(app, "--limit-train", o.limit_train, "N", "use at most N training images (default 0: all)",
        whole(o.limit_train))
        ->check(number(true, 0, false));
    add(app, "--limit-val", o.limit_val, "N", "use at most N validation images (default 0: all)", whole(o.limit_val))
        ->check(number(true, 0, false));
    add(app, "--max-steps", o.max_steps, "N",
        "at most N training steps per epoch on every backend, for timing runs (default 0: all)", whole(o.max_steps))
        ->check(number(true, 0, false));
    add(app, "--precision", o.precision, "P",
        "fp32 | tf32 | bf16 on the GPU (default fp32); bf16: bfloat16 activations, float32 weights and loss",
        text(o.precision))
        ->check(one_of({"fp32", "tf32", "bf16"}));
    add(app, "--memory-format", o.memory_format, "F",
        "nchw | channels_last: the layout of the images and of every activation and gradient after them "
        "(NHWC kernels for convolutions, pooling and batch norm; default nchw)",
        text(o.memory_format))
        ->check(one_of({"nchw", "channels_last"}));
    add(app, "--cpu-conv", o.cpu_conv, "ALG",
        "automatic | im2col | winograd2 | winograd4: the CPU's algorithm for 3x3 stride-1 convolutions "
        "(default automatic: Winograd F(4x4,3x3) from 16 channels on, im2col below)",
        text(o.cpu_conv))
        ->check(one_of({"automatic", "im2col", "winograd2", "winograd4"}));
    app.add_option_function<std::string>(
           "--graph", [&o](const std::string& v) { o.graph = v == "on"; },
           wrap("on | off: on a GPU, capture the training step in a CUDA graph and replay it (default on; steps "
                "that cannot be captured run as they are)"))
        ->type_name("on|off")
        ->default_function([&o] { return std::string(o.graph ? "on" : "off"); })
        ->check(one_of({"on", "off"}));
    app.add_option_function<std::string>(
           "--sync-bn", [&o](const std::string& v) { o.sync_bn = v == "on"; },
           wrap("on | off: under mpirun, batch norm (the ResNet's) normalises with the statistics of the global "
                "batch, over every rank's share, instead of each rank's own (default off)"))
        ->type_name("on|off")
        ->default_function([&o] { return std::string(o.sync_bn ? "on" : "off"); })
        ->check(one_of({"on", "off"}));
    add(app, "--out", o.out, "DIR",
        "metrics, charts, report, checkpoints and config.toml, the run's configuration (default dyad-out)",
        text(o.out));
    add(app, "--resume", o.resume, "FILE", "continue a backend's run from its checkpoint (OUT/cpu.safetensors ...)",
        text(o.resume));
    app.add_flag_callback(
           "--no-profile", [&o] { o.profile = false; }, wrap("skip the per-layer timing at the end"))
        ->default_function([&o] { return std::string(o.profile ? "false" : "true"); });
    app.add_flag_callback(
           "--quiet", [&o] { o.quiet = true; }, wrap("no progress output"))
        ->default_function([&o] { return std::string(o.quiet ? "true" : "false"); });
}

void describe_program(CLI::App& app) {
    app.name(kProgram);
    app.description(
        "Trains one model on each backend from the same initial weights and batches, times them, and writes\n"
        "curves, a report and checkpoints. Without --data it trains on Fashion-MNIST.");
    app.footer(
        "Examples:\n"
        "  dyad-tinyimagenet                     Fashion-MNIST, 3 epochs, on the CPU (and the GPU)\n"
        "  dyad-tinyimagenet --data generated    a small generated set, 5 epochs\n"
        "  dyad-tinyimagenet --config dyad-out/config.toml    repeats that run exactly\n"
        "  dyad-tinyimagenet --device cpu,naive --naive-steps 20    a cheap naive column\n"
        "  dyad-tinyimagenet predict --checkpoint dyad-out/cpu.safetensors photo.jpg");
    app.get_formatter()->column_width(kNameWidth);
}

[[noreturn]] void usage_error(const std::string& what) {
    DYAD_CHECK(false, kProgram, ": ", what, " (see --help)");
    std::abort();  // not reached: DYAD_CHECK(false) throws
}

// Parses `args` into `o` (and `p` for predict, `st` for study); the action asked for.
CommandLine::Action parse_into(const std::vector<std::string>& args, Options& o, PredictOptions* p, std::string* help,
                               StudyOptions* st = nullptr) {
    CLI::App app;
    describe_program(app);
    app.set_help_flag("-h,--help", "print this help and exit");
    app.set_config("--config", "",
                   wrap("read the options from FILE, a TOML file of name = value lines like the config.toml every "
                        "run writes to --out; flags on the command line take precedence"))
        ->type_name("FILE");
    app.allow_config_extras(CLI::config_extras_mode::error);
    add_training_options(app, o);
    CLI::App* predict = nullptr;
    if (p) {
        predict = app.add_subcommand("predict", "top-5 classes of a trained checkpoint for image files");
        predict->set_help_flag("-h,--help", "print this help and exit");
        predict
            ->add_option("--checkpoint", p->checkpoint,
                         wrap("a checkpoint a training run wrote (OUT/cpu.safetensors ...)"))
            ->type_name("FILE");
        predict
            ->add_option("images", p->images,
                         wrap("JPEG or PNG files of any size: the shorter side is resized to the training images' "
                              "size and the centre cropped, in grayscale for a grayscale model (Fashion-MNIST)"))
            ->type_name("IMAGE");
        predict->footer(
            "Example:\n  dyad-tinyimagenet predict --checkpoint dyad-out/cpu.safetensors photo.jpg shirt.png");
    }
    CLI::App* study = nullptr;
    if (st) {
        study = app.add_subcommand("study", "how each backend's speed grows with the size of the work");
        study->set_help_flag("-h,--help", "print this help and exit");
        study
            ->add_option("--budget", st->budget,
                         wrap("seconds for the whole study (default 180, or 120 on a machine with a GPU)"))
            ->type_name("SECONDS")
            ->check(number(false, 0, true));
        study
            ->add_option("--out", st->out,
                         wrap("where study.html, study.csv, study.json and the charts go (default dyad-study)"))
            ->type_name("DIR");
        study
            ->add_option("--device", st->devices,
                         wrap("backends, comma-separated: naive, cpu1 (OpenMP on 1 thread), cpu (OpenMP on all "
                              "threads), cuda (strict FP32), cuda-tf32, cuda-bf16. Default: all present"))
            ->type_name("LIST")
            ->delimiter(',')
            ->check(one_of({"naive", "cpu1", "cpu", "cuda", "cuda-tf32", "cuda-bf16"}));
        study->add_option("--max-n", st->max_n, wrap("the largest matrix product, n x n (default 8192)"))
            ->type_name("N")
            ->check(number(true, 64, false));
        study->add_option("--max-batch", st->max_batch, wrap("the largest training-step batch (default 1024)"))
            ->type_name("N")
            ->check(number(true, 1, false));
        study->add_flag_callback(
            "--sgemm-only", [st] { st->steps = false; }, wrap("the matrix products only, no training steps"));
        study->add_flag("--quiet", st->quiet, wrap("no progress output"));
        study->footer("Example:\n  dyad-tinyimagenet study --budget 60");
    }
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes the last argument first
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        *help = predict && predict->parsed() ? predict->help() : study && study->parsed() ? study->help() : app.help();
        return CommandLine::Action::help;
    } catch (const CLI::ParseError& e) {
        // CLI11 names the flag in its messages, but not the config file in its own: add it.
        std::string what = e.what();
        const std::string unknown = "INI was not able to parse ";
        if (what.rfind(unknown, 0) == 0) what = "unknown option '" + what.substr(unknown.size()) + "'";
        const CLI::Option* config = app.get_config_ptr();
        if (e.get_name() == "FileError" || e.get_name() == "ConfigError")
            what = "--config " + (config->empty() ? std::string() : config->results().back()) + ": " + what;
        usage_error(what);
    }
    if (predict && predict->parsed()) {
        const std::string cmd = std::string(kProgram) + " predict";
        DYAD_CHECK(!p->checkpoint.empty(), cmd,
                   ": --checkpoint FILE is missing: name the checkpoint a training run wrote, e.g. --checkpoint "
                   "dyad-out/cpu.safetensors (see predict --help)");
        DYAD_CHECK(!p->images.empty(), cmd, ": no image given: name one or more JPEG or PNG files after --checkpoint ",
                   p->checkpoint, " (see predict --help)");
        return CommandLine::Action::predict;
    }
    if (study && study->parsed()) return CommandLine::Action::study;
    return CommandLine::Action::train;
}

// The options as CLI11 writes a config file: every flag's name and value, its help as a comment.
std::string render_config(const Options& options) {
    Options o = options;
    CLI::App app;
    add_training_options(app, o);
    for (CLI::Option* opt : app.get_options())
        if (opt->get_configurable()) opt->capture_default_str();
    return "# The options of a dyad-tinyimagenet run, every default resolved (epochs, learning rate, weight decay,\n"
           "# threads, devices). Repeat the run with: dyad-tinyimagenet --config " +
           o.out + "/config.toml\n" + app.config_to_str(/*default_also=*/true, /*write_description=*/true);
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
    CommandLine cl;
    cl.action = parse_into(args, cl.options, &cl.predict, &cl.help, &cl.study);
    return cl;
}

bool parse_options(const std::vector<std::string>& args, Options* options, std::string* help) {
    Options o = *options;
    if (parse_into(args, o, nullptr, help) == CommandLine::Action::help) return false;
    *options = o;
    return true;
}

std::string config_text(const Options& options) {
    const std::string text = render_config(options);
    // CLI11 2.1's reader takes '#' for a comment even inside quotes, and no value may hold a line break: read
    // the text back and refuse a value that would not come back as it went in.
    Options back;
    CLI::App reader;
    add_training_options(reader, back);
    std::istringstream in(text);
    try {
        reader.parse_from_stream(in);
    } catch (const CLI::ParseError& e) {
        DYAD_CHECK(false, kProgram, ": a value cannot be written to a config file: CLI11 would read it back as ",
                   e.what(), " (a value with both kinds of quotes and a space?)");
    }
    const std::string again = render_config(back);
    if (again != text) {
        std::istringstream a(text), b(again);
        std::string la, lb;
        while (std::getline(a, la) && std::getline(b, lb) && la == lb) {
        }
        DYAD_CHECK(false, kProgram, ": the value ", la, " cannot be written to a config file (it reads back as ", lb,
                   "; CLI11 takes '#' for a comment even inside quotes)");
    }
    return text;
}

}  // namespace dyad::trainer
