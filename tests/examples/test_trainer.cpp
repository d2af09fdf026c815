// The trainer end to end on a generated data set in Tiny ImageNet's layout: the output files exist and
// parse, the loss falls, two backends (omp and naive) agree, a resumed run continues exactly, and the
// command line is checked.
#include "support/catch.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dyad/data.h"
#include "support/files.h"
#include "support/png.h"
#include "trainer.h"

using namespace dyad;
using namespace dyad::trainer;

namespace {

std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("trainer", name); }

// A small, quick configuration: 10 generated classes, 160 training and 40 validation images.
Options small(const std::string& out) {
    Options o;
    o.data = "generated";
    o.devices = {"cpu"};
    o.epochs = 2;
    o.batch_size = 32;
    o.lr = 0.05;
    o.limit_train = 160;
    o.limit_val = 40;
    o.out = out;
    o.quiet = true;
    o.profile = false;
    return o;
}

}  // namespace

TEST_CASE("trainer: a short run on generated data writes every output and the loss falls", "[trainer]") {
    const std::string out = fresh_dir("run");
    Options o = small(out);
    o.epochs = 3;
    o.profile = true;
    const Report r = run(o);
    REQUIRE(r.epochs.size() == 3);
    REQUIRE(r.epochs.back().train_loss < r.epochs.front().train_loss);
    for (const EpochMetrics& m : r.epochs) {
        REQUIRE(m.val_top1 >= 0.0);
        REQUIRE(m.val_top5 >= m.val_top1);
        REQUIRE(m.img_per_s > 0.0);
    }
    for (const char* f : {"metrics.csv", "metrics.json", "loss.svg", "accuracy.svg", "report.html", "cpu.safetensors"})
        REQUIRE(std::filesystem::file_size(std::filesystem::path(out) / f) > 0);
    // One CSV line per epoch after the header.
    const std::string csv = test::read_bytes(out + "/metrics.csv");
    REQUIRE(std::count(csv.begin(), csv.end(), '\n') == 4);
    // The per-layer table covers the baseline CNN's 13 layers, then the whole model.
    REQUIRE(r.backends.size() == 1);
    REQUIRE(r.backends[0].layers.size() == 14);
    REQUIRE(r.backends[0].layers[0].layer.rfind("0 Conv2d(", 0) == 0);
    REQUIRE(r.backends[0].layers.back().layer == "whole model");
    // predict reads the checkpoint and names five classes for a generated image.
    const std::string img = out + "/generated-data/val/images/val_0.JPEG";
    const std::string p = predict(out + "/cpu.safetensors", {img});
    REQUIRE(std::count(p.begin(), p.end(), '%') == 5);
    REQUIRE_THAT(p, Catch::Contains("pattern"));
    // Photos of any size and either format: a wide JPEG and a tall RGBA PNG are resized and centre-cropped.
    data::Image wide;
    wide.w = 200, wide.h = 90, wide.c = 3;
    for (int64_t i = 0; i < wide.w * wide.h * 3; i++) wide.pixels.push_back(uint8_t(i % 251));
    data::write_jpeg_file(out + "/wide.jpg", wide);
    test::PngSpec tall;
    tall.w = 45, tall.h = 101, tall.colour = 6;
    const std::string png = test::png_bytes(tall, test::png_pattern(tall));
    std::ofstream(out + "/tall.png", std::ios::binary).write(png.data(), std::streamsize(png.size()));
    const std::string photos = predict(out + "/cpu.safetensors", {out + "/wide.jpg", out + "/tall.png"});
    REQUIRE(std::count(photos.begin(), photos.end(), '%') == 10);
    REQUIRE_THAT(photos, Catch::Contains(out + "/wide.jpg (200x90, resized to the stored 64x64") &&
                             Catch::Contains(out + "/tall.png (45x101, resized to the stored 64x64"));
    // Anything else is refused naming the file and what it is.
    std::ofstream(out + "/anim.gif", std::ios::binary) << "GIF89a\x01\x00\x01\x00";
    REQUIRE_THROWS_WITH(predict(out + "/cpu.safetensors", {out + "/anim.gif"}),
                        Catch::Contains(out + "/anim.gif") && Catch::Contains("a GIF file"));
}

TEST_CASE("trainer: the generated set's default recipe learns steadily", "[trainer]") {
    // Every default (5 epochs, batch 32, SGD lr 0.01, cosine): validation accuracy must rise from epoch to
    // epoch. The old recipe (batch 128, lr 0.05: 5 steps an epoch) went 0.37, 0.475, 0.15, 0.445, 0.35.
    Options o;
    o.data = "generated";
    o.devices = {"cpu"};
    o.out = fresh_dir("generated-default");
    o.quiet = true;
    o.profile = false;
    const Report r = run(o);
    REQUIRE(r.epochs.size() == 5);
    bool recipe = false;
    for (const auto& [k, v] : r.facts)
        recipe |= k == "training" && v.find("5 epochs, batch 32, SGD lr 0.01") != std::string::npos;
    REQUIRE(recipe);
    std::vector<double> top1;
    for (const EpochMetrics& m : r.epochs) top1.push_back(m.val_top1);
    INFO("validation top-1: " << top1[0] << " " << top1[1] << " " << top1[2] << " " << top1[3] << " " << top1[4]);
    // Seeds 1 to 3 end at 0.88-0.905 and never fall; chance is 0.1. The margins leave room for another thread
    // count's rounding.
    REQUIRE(top1.back() >= 0.7);
    REQUIRE(top1.back() >= top1.front() + 0.3);
    for (size_t e = 1; e < top1.size(); e++) REQUIRE(top1[e] >= top1[e - 1] - 0.05);
    REQUIRE(r.epochs.back().train_loss < 0.5 * r.epochs.front().train_loss);
}

TEST_CASE("trainer: the omp and naive backends follow the same curve from the same weights", "[trainer]") {
    Options o = small(fresh_dir("backends"));
    o.epochs = 1;
    o.limit_train = 64;
    o.devices = {"cpu", "naive"};
    const Report r = run(o);
    REQUIRE(r.epochs.size() == 2);
    REQUIRE(r.epochs[0].backend == "cpu");
    REQUIRE(r.epochs[1].backend == "naive");
    // Same batches, same initial weights: the losses differ by float rounding only.
    REQUIRE(std::abs(r.epochs[0].train_loss - r.epochs[1].train_loss) < 1e-4 * r.epochs[0].train_loss);
    REQUIRE(r.max_curve_difference < 1e-4 * r.epochs[0].train_loss);
}

TEST_CASE("trainer: --memory-format channels_last trains the same model on NHWC kernels", "[trainer]") {
    // naive's NHWC kernels add in its NCHW order: the same losses and accuracies bit for bit. omp's NHWC
    // kernels add in other orders in places: the same curve up to float rounding.
    Report reports[2];
    for (const bool cl : {false, true}) {
        Options o = small(fresh_dir(cl ? "channels_last" : "nchw"));
        o.epochs = 1;
        o.limit_train = 64;
        o.batch_size = 8;
        o.devices = {"cpu", "naive"};
        o.naive_steps = 1;  // one naive step and one validation batch: enough to compare bit for bit
        o.max_steps = 2;    // two omp steps: rounding differences have not yet grown through training
        o.memory_format = cl ? "channels_last" : "nchw";
        reports[cl ? 1 : 0] = run(o);
    }
    const Report &a = reports[0], &b = reports[1];
    REQUIRE(a.epochs.size() == 2);
    REQUIRE(b.epochs.size() == 2);
    REQUIRE(b.epochs[1].backend == "naive");
    CHECK(b.epochs[1].train_loss == a.epochs[1].train_loss);
    CHECK(b.epochs[1].val_loss == a.epochs[1].val_loss);
    CHECK(b.epochs[1].val_top1 == a.epochs[1].val_top1);
    REQUIRE(b.epochs[0].backend == "cpu");
    CHECK(std::abs(b.epochs[0].train_loss - a.epochs[0].train_loss) < 1e-4 * a.epochs[0].train_loss);
    CHECK(std::abs(b.epochs[0].val_loss - a.epochs[0].val_loss) < 1e-4 * a.epochs[0].val_loss);
    // The report says which layout ran (the ops' own channels_last results: tests/core/test_memory_format.cpp).
    bool said = false;
    for (const auto& fact : b.facts) said = said || fact.second.find("activations channels_last") != std::string::npos;
    CHECK(said);
}

TEST_CASE("trainer: resuming from a checkpoint continues exactly", "[trainer]") {
    // Uninterrupted: two epochs. Interrupted: one epoch, then a second run resumes from its checkpoint.
    Options full = small(fresh_dir("full"));
    const Report a = run(full);
    Options first = small(fresh_dir("first"));
    first.epochs = 1;
    run(first);
    Options second = small(fresh_dir("second"));
    second.resume = first.out + "/cpu.safetensors";
    const Report b = run(second);
    REQUIRE(a.epochs.size() == 2);
    // The checkpoint carries the finished epoch's metrics, so the resumed run reports both epochs.
    REQUIRE(b.epochs.size() == 2);
    REQUIRE(b.epochs[0].epoch == 1);
    REQUIRE(b.epochs[0].train_loss == a.epochs[0].train_loss);
    REQUIRE(b.epochs[0].val_top1 == a.epochs[0].val_top1);
    REQUIRE(b.epochs[1].epoch == 2);
    REQUIRE(b.epochs[1].train_loss == a.epochs[1].train_loss);
    REQUIRE(b.epochs[1].val_loss == a.epochs[1].val_loss);
    const std::string csv = test::read_bytes(second.out + "/metrics.csv");
    REQUIRE(std::count(csv.begin(), csv.end(), '\n') == 3);
}

TEST_CASE("trainer: a stop request saves a checkpoint and the metrics so far, and the run resumes from it",
          "[trainer]") {
    // The flag Ctrl-C sets, already raised: training stops after its first step.
    const std::atomic<bool> stop{true};
    Options o = small(fresh_dir("stop"));
    o.epochs = 1;
    const Report r = run(o, &stop);
    REQUIRE(r.epochs.empty());
    REQUIRE(std::filesystem::exists(o.out + "/metrics.csv"));
    REQUIRE(std::filesystem::exists(o.out + "/report.html"));
    io::Metadata meta;
    io::load_tensors(o.out + "/cpu.safetensors", &meta);
    REQUIRE(meta.at("epoch") == "0");
    REQUIRE(meta.at("step") == "1");
    // Resuming skips the step already taken and finishes the epoch like an uninterrupted run.
    Options again = small(fresh_dir("stop-resume"));
    again.epochs = 1;
    again.resume = o.out + "/cpu.safetensors";
    const Report resumed = run(again);
    Options whole = small(fresh_dir("stop-whole"));
    whole.epochs = 1;
    const Report full = run(whole);
    REQUIRE(resumed.epochs.size() == 1);
    REQUIRE(resumed.epochs[0].val_loss == full.epochs[0].val_loss);
    // The step taken before the stop counts in the resumed epoch's training loss and accuracy.
    REQUIRE(resumed.epochs[0].train_loss == full.epochs[0].train_loss);
    REQUIRE(resumed.epochs[0].train_acc == full.epochs[0].train_acc);
}

TEST_CASE("trainer: --naive-steps gives a cheap naive column that follows the cpu one step for step", "[trainer]") {
    // cpu trains its 5 steps per epoch; naive only 2, and validates on 2 batches. Batches of 8: the naive
    // kernels are the slow part, and the contract does not depend on the batch size.
    Options o = small(fresh_dir("naive-steps"));
    o.epochs = 1;
    o.devices = {"cpu", "naive"};
    o.naive_steps = 2;
    o.batch_size = 8;
    o.limit_train = 40;  // 5 training batches of 8
    o.limit_val = 24;    // 3 validation batches of 8
    const Report r = run(o);
    REQUIRE(r.backends.size() == 2);
    CHECK(r.backends[0].steps_per_epoch == 5);
    CHECK(r.backends[0].note.empty());
    CHECK(r.backends[1].steps_per_epoch == 2);
    CHECK_THAT(r.backends[1].note, Catch::Contains("2 of 5 training steps") && Catch::Contains("2 of 3 validation") &&
                                       Catch::Contains("--naive-steps"));
    CHECK_THAT(comparison_table(r), Catch::Contains("naive (2 steps/epoch)") && Catch::Contains("--naive-steps"));
    // The limited run left out of the curve comparison; its two steps are the cpu's first two: a cpu run of
    // two steps gives the same epoch loss up to float rounding (the naive and omp kernels sum in other orders).
    CHECK(r.max_curve_difference == 0.0);
    Options two = o;
    two.out = fresh_dir("naive-steps-cpu");
    two.devices = {"cpu"};
    two.max_steps = 2;
    const Report c = run(two);
    REQUIRE(r.epochs.size() == 2);
    REQUIRE(r.epochs[1].backend == "naive");
    CHECK(std::abs(r.epochs[1].train_loss - c.epochs[0].train_loss) < 1e-4 * c.epochs[0].train_loss);
    CHECK(r.epochs[1].img_per_s * r.epochs[1].seconds == Approx(16.0).epsilon(1e-6));  // 2 batches of 8
}

TEST_CASE("trainer: the per-layer profile of a ResNet times the layers inside its blocks", "[trainer]") {
    Options o = small(fresh_dir("resnet"));
    o.model = "resnet18";
    o.epochs = 1;
    o.max_steps = 1;
    o.batch_size = 4;
    o.limit_train = 8;
    o.limit_val = 4;
    o.profile = true;
    const Report r = run(o);
    REQUIRE(r.backends.size() == 1);
    const std::vector<LayerTime>& layers = r.backends[0].layers;
    // conv1, bn1, relu; 8 blocks of conv1, bn1, conv2, bn2 (their ReLUs and additions are functional), 3 of
    // them with a downsampling conv and bn; avgpool, fc; then the whole model.
    REQUIRE(layers.size() == 3 + 8 * 4 + 3 * 2 + 2 + 1);
    auto has = [&](const std::string& prefix) {
        return std::any_of(layers.begin(), layers.end(),
                           [&](const LayerTime& l) { return l.layer.rfind(prefix, 0) == 0; });
    };
    REQUIRE(has("layer2.0.downsample.0 Conv2d("));
    REQUIRE(has("conv1 Conv2d("));
    REQUIRE(has("layer1.0.conv1 Conv2d("));
    REQUIRE(has("layer4.1.bn2 BatchNorm2d("));
    REQUIRE(has("fc Linear("));
    for (const LayerTime& l : layers) {
        REQUIRE(l.forward_ms > 0.0);
        REQUIRE(l.backward_ms > 0.0);
    }
    // The whole model takes at least as long as its largest layer.
    double largest = 0;
    for (size_t i = 0; i + 1 < layers.size(); i++) largest = std::max(largest, layers[i].forward_ms);
    REQUIRE(layers.back().forward_ms >= largest);
}

TEST_CASE("trainer: a non-finite loss stops training, naming the step, after saving the last good state",
          "[trainer][faults]") {
    // A learning rate this large drives the loss to NaN or infinity within a few steps.
    Options o = small(fresh_dir("diverge"));
    o.lr = 1e6;
    o.schedule = "none";
    std::string message;
    try {
        run(o);
    } catch (const Error& e) {
        message = e.what();
    }
    INFO(message);
    REQUIRE_THAT(message, Catch::Contains("cpu: training diverged: the training loss is") &&
                              Catch::Contains("at epoch 1, step ") && Catch::Contains("first non-finite parameter: ") &&
                              Catch::Contains("The last good state (epoch 1, step ") &&
                              Catch::Contains(o.out + "/cpu.safetensors"));
    // The metrics so far and a checkpoint of finite weights were written.
    REQUIRE(std::filesystem::exists(o.out + "/metrics.csv"));
    io::Metadata meta;
    const nn::NamedTensors saved = io::load_tensors(o.out + "/cpu.safetensors", &meta);
    REQUIRE(meta.at("epoch") == "0");
    for (const auto& [name, t] : saved) {
        INFO(name);
        REQUIRE(all_finite(t));
    }
    // Resuming from it with a sensible rate trains on with finite losses.
    Options again = small(fresh_dir("diverge-resume"));
    again.epochs = 1;
    again.resume = o.out + "/cpu.safetensors";
    const Report r = run(again);
    REQUIRE(r.epochs.size() == 1);
    REQUIRE(std::isfinite(r.epochs[0].train_loss));
    REQUIRE(r.epochs[0].train_loss < 3.0);
}

#ifdef DYAD_TRAINER_EXE
TEST_CASE("trainer: the program killed mid-run resumes from its last checkpoint with the same losses",
          "[trainer][faults]") {
    // The real program, killed with SIGKILL as soon as its first checkpoint appears; then a resumed run must
    // reproduce the losses of an uninterrupted one.
    Options full = small(fresh_dir("kill-full"));
    full.epochs = 4;
    full.batch_size = 16;
    full.limit_train = 32;
    full.limit_val = 16;
    full.threads = 2;
    const Report a = run(full);

    const std::string out = fresh_dir("kill");
    std::vector<std::string> args = {DYAD_TRAINER_EXE,
                                     "--data",
                                     "generated",
                                     "--epochs",
                                     "4",
                                     "--batch-size",
                                     "16",
                                     "--lr",
                                     "0.05",
                                     "--limit-train",
                                     "32",
                                     "--limit-val",
                                     "16",
                                     "--threads",
                                     "2",
                                     "--out",
                                     out,
                                     "--quiet",
                                     "--no-profile"};
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t child = 0;
    REQUIRE(::posix_spawn(&child, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    const std::string ckpt = out + "/cpu.safetensors";
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 60000 && !std::filesystem::exists(ckpt); i++) {
        if (::waitpid(child, &status, WNOHANG) == child) {
            exited = true;
            break;
        }
        ::usleep(1000);
    }
    REQUIRE_FALSE(exited);
    ::kill(child, SIGKILL);
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));

    io::Metadata meta;
    io::load_tensors(ckpt, &meta);  // complete: the checkpoint is replaced atomically
    const int done = std::stoi(meta.at("epoch"));
    REQUIRE(done >= 1);
    REQUIRE(done < 4);
    Options resumed = full;
    resumed.out = out;
    resumed.resume = ckpt;
    const Report b = run(resumed);
    REQUIRE(b.epochs.size() == a.epochs.size());
    for (size_t e = 0; e < a.epochs.size(); e++) {
        CAPTURE(e);
        REQUIRE(b.epochs[e].train_loss == a.epochs[e].train_loss);
        REQUIRE(b.epochs[e].val_loss == a.epochs[e].val_loss);
    }
}

TEST_CASE("trainer: the program exits non-zero with the error on bad input", "[trainer][faults]") {
    // Runs the program with `args`, its output going to a file; returns (exit status, output).
    auto run_program = [](const std::string& name, std::vector<std::string> args) {
        const std::string log = fresh_dir(name) + "/output.txt";
        args.insert(args.begin(), DYAD_TRAINER_EXE);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&files, 1, 2);
        pid_t child = 0;
        const int spawned = ::posix_spawn(&child, argv[0], &files, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&files);
        int status = 0;
        if (spawned == 0) ::waitpid(child, &status, 0);
        return std::make_pair(spawned == 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, test::read_bytes(log));
    };
    const auto [missing_rc, missing_out] =
        run_program("exit-missing", {"--data", "/nonexistent/tiny-imagenet-200", "--out", fresh_dir("exit-out")});
    REQUIRE(missing_rc == 1);
    REQUIRE_THAT(missing_out, Catch::Contains("'/nonexistent/tiny-imagenet-200' is not a directory"));
    const auto [flag_rc, flag_out] = run_program("exit-flag", {"--batch-size", "zero"});
    REQUIRE(flag_rc == 1);
    REQUIRE_THAT(flag_out, Catch::Contains("--batch-size"));
    const auto [diverge_rc, diverge_out] =
        run_program("exit-diverge", {"--data", "generated", "--limit-train", "64", "--limit-val", "16", "--lr", "1e6",
                                     "--schedule", "none", "--quiet", "--out", fresh_dir("exit-diverge-out")});
    REQUIRE(diverge_rc == 1);
    REQUIRE_THAT(diverge_out, Catch::Contains("training diverged"));
}
#endif

TEST_CASE("trainer: --data names a folder of Fashion-MNIST files, and stored and input sizes are named alike",
          "[trainer]") {
    // The installed files, linked into a folder of the test's own.
    const std::string dir = fresh_dir("fashion-files");
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
        std::filesystem::create_symlink(std::string(data::kFashionMnistDir) + "/" + f, std::filesystem::path(dir) / f);
    Options o = small(fresh_dir("fashion-run"));
    o.data = dir;
    o.epochs = 1;
    o.limit_train = 64;
    o.limit_val = 32;
    const Report r = run(o);
    REQUIRE(r.title == "baseline on Fashion-MNIST");
    REQUIRE(r.epochs.size() == 1);
    REQUIRE(std::isfinite(r.epochs[0].train_loss));
    // The stored 28x28 images and the padded 32x32 input are named alike in the load message, the report
    // (its facts, report.html and metrics.json) and predict's output.
    const std::string sizes = "stored 28x28, network input 1x32x32 (padded)";
    REQUIRE(image_sizes(1, 28, 32) == sizes);
    REQUIRE(image_sizes(3, 64, 64) == "stored 64x64, network input 3x64x64");
    std::string log;
    (void)load_data(o, &log);
    REQUIRE_THAT(log, Catch::Contains("Fashion-MNIST: 64 training and 32 validation images, 10 classes; " + sizes));
    bool named = false;
    for (const auto& [k, v] : r.facts) named |= k == "images" && v == sizes;
    REQUIRE(named);
    for (const char* f : {"report.html", "metrics.json"})
        REQUIRE_THAT(test::read_bytes(o.out + "/" + f), Catch::Contains(sizes));
    data::Image shirt;
    shirt.w = 40, shirt.h = 30, shirt.c = 1;
    shirt.pixels.assign(40 * 30, 90);
    data::write_jpeg_file(o.out + "/shirt.jpg", shirt);
    const std::string p = predict(o.out + "/cpu.safetensors", {o.out + "/shirt.jpg"});
    REQUIRE_THAT(p, Catch::StartsWith(o.out + "/cpu.safetensors: baseline, 10 classes; " + sizes + "\n"));
    REQUIRE_THAT(p, Catch::Contains("shirt.jpg (40x30, resized to the stored 28x28"));
}

TEST_CASE("trainer: command-line flags are parsed and checked", "[trainer]") {
    Options o;
    std::string help;
    REQUIRE(parse_options({"--epochs", "3", "--batch-size=64", "--device", "cpu,naive", "--lr", "0.1"}, &o, &help));
    REQUIRE(o.epochs == 3);
    REQUIRE(o.batch_size == 64);
    REQUIRE(o.devices == std::vector<std::string>{"cpu", "naive"});
    REQUIRE(o.lr == 0.1);
    REQUIRE(o.graph);  // CUDA graphs on by default
    REQUIRE(parse_options({"--graph=off"}, &o, &help));
    REQUIRE_FALSE(o.graph);
    REQUIRE(parse_options({"--graph", "on"}, &o, &help));
    REQUIRE(o.graph);
    REQUIRE_FALSE(parse_options({"--help"}, &o, &help));
    // The help lists every flag with what it does and its default, and the predict subcommand.
    for (const char* flag : {"--data",      "--device",  "--model",       "--epochs",       "--batch-size",
                             "--optimizer", "--lr",      "--momentum",    "--weight-decay", "--schedule",
                             "--seed",      "--threads", "--limit-train", "--limit-val",    "--max-steps",
                             "--precision", "--graph",   "--out",         "--resume",       "--no-profile",
                             "--quiet",     "--config",  "--naive-steps", "--cpu-conv",     "--memory-format"}) {
        INFO(flag);
        REQUIRE_THAT(help, Catch::Contains(std::string("  ") + flag + " "));
    }
    REQUIRE_THAT(help, Catch::Contains("128 otherwise") && Catch::Contains("Default: 3 on Fashion-MNIST") &&
                           Catch::Contains("9 minutes") && Catch::Contains("predict"));
    // Each bad command line on fresh options, so an earlier failure cannot leave a value behind.
    auto bad = [](const std::vector<std::string>& args) {
        Options fresh;
        std::string h;
        parse_options(args, &fresh, &h);
    };
    REQUIRE_THROWS_WITH(bad({"--epochs", "two"}), Catch::Contains("--epochs") && Catch::Contains("'two'"));
    REQUIRE_THROWS_WITH(bad({"--model", "vgg"}), Catch::Contains("--model") && Catch::Contains("vgg"));
    REQUIRE_THROWS_WITH(bad({"--device", "tpu"}), Catch::Contains("--device") && Catch::Contains("tpu"));
    REQUIRE_THROWS_WITH(bad({"--device", "cpu,tpu"}), Catch::Contains("--device") && Catch::Contains("tpu"));
    REQUIRE_THROWS_WITH(bad({"--frobnicate"}), Catch::Contains("--frobnicate"));
    REQUIRE_THROWS_WITH(bad({"--lr"}), Catch::Contains("--lr") && Catch::Contains("missing"));
    REQUIRE_THROWS_WITH(bad({"--precision", "fp8"}), Catch::Contains("--precision") && Catch::Contains("fp8"));
    REQUIRE_THROWS_WITH(bad({"--cpu-conv", "fft"}), Catch::Contains("--cpu-conv") && Catch::Contains("fft"));
    REQUIRE_THROWS_WITH(bad({"--memory-format", "nhwc"}),
                        Catch::Contains("--memory-format") && Catch::Contains("nhwc"));
    REQUIRE_THROWS_WITH(bad({"--graph", "yes"}), Catch::Contains("--graph") && Catch::Contains("yes"));
    REQUIRE_THROWS_WITH(bad({"--optimizer", "lion"}), Catch::Contains("--optimizer") && Catch::Contains("lion"));
    REQUIRE_THROWS_WITH(bad({"--lr", "0"}), Catch::Contains("--lr: expects a number above 0, got 0"));
    REQUIRE_THROWS_WITH(bad({"--lr", "fast"}), Catch::Contains("--lr") && Catch::Contains("'fast'"));
    REQUIRE_THROWS_WITH(bad({"--weight-decay", "-1"}),
                        Catch::Contains("--weight-decay: expects a number of at least 0, got -1"));
    REQUIRE_THROWS_WITH(bad({"--batch-size", "0"}), Catch::Contains("--batch-size") && Catch::Contains("got 0"));
    REQUIRE_THROWS_WITH(bad({"--batch-size", "1.5"}), Catch::Contains("--batch-size") && Catch::Contains("'1.5'"));
    REQUIRE_THROWS_WITH(bad({"--threads", "-2"}), Catch::Contains("--threads") && Catch::Contains("-2"));
    REQUIRE_THROWS_WITH(bad({"--seed", "x1"}), Catch::Contains("--seed") && Catch::Contains("'x1'"));
    REQUIRE_THROWS_WITH(bad({"--naive-steps", "-1"}), Catch::Contains("--naive-steps") && Catch::Contains("-1"));
    // --epochs 0 would mean "the data set's default" inside Options: refused, saying how to get the default.
    REQUIRE_THROWS_WITH(bad({"--epochs", "0"}), Catch::Contains("--epochs") && Catch::Contains("got 0") &&
                                                    Catch::Contains("leave --epochs out for the data set's default"));
    REQUIRE_THROWS_WITH(bad({"--epochs", "-1"}), Catch::Contains("--epochs") && Catch::Contains("-1"));
    REQUIRE(parse_options({"--epochs", "1", "--no-profile", "--quiet"}, &o, &help));
    REQUIRE(o.epochs == 1);
    REQUIRE_FALSE(o.profile);
    REQUIRE(o.quiet);
    // Each optimizer's defaults, unless given.
    Options sgd, adamw;
    REQUIRE(parse_options({}, &sgd, &help));
    REQUIRE(parse_options({"--optimizer", "adamw"}, &adamw, &help));
    REQUIRE(effective_lr(sgd) == 0.05);
    REQUIRE(effective_weight_decay(sgd) == 5e-4);
    REQUIRE(effective_lr(adamw) == 1e-3);
    REQUIRE(effective_weight_decay(adamw) == 0.05);
    REQUIRE(parse_options({"--optimizer", "adamw", "--lr", "0.02", "--weight-decay", "0"}, &adamw, &help));
    REQUIRE(effective_lr(adamw) == 0.02);
    REQUIRE(effective_weight_decay(adamw) == 0.0);
}

TEST_CASE("trainer: --optimizer adamw trains, checkpoints and resumes", "[trainer][optim]") {
    const std::string out = fresh_dir("adamw");
    Options o = small(out);
    o.optimizer = "adamw";
    o.lr = 2e-3;
    o.epochs = 3;
    const Report r = run(o);
    REQUIRE(r.epochs.size() == 3);
    REQUIRE(r.epochs.back().train_loss < r.epochs.front().train_loss);
    bool named = false;
    for (const auto& [k, v] : r.facts) named |= k == "training" && v.find("AdamW lr 0.002") != std::string::npos;
    REQUIRE(named);
    // The checkpoint holds AdamW's state and says so; a resumed run continues from it.
    io::Metadata meta;
    const nn::NamedTensors file = io::load_tensors(out + "/cpu.safetensors", &meta);
    REQUIRE(meta.at("optimizer.type") == "AdamW");
    REQUIRE(std::any_of(file.begin(), file.end(),
                        [](const auto& e) { return e.first.rfind("optimizer.exp_avg_sq.", 0) == 0; }));
    Options again = small(fresh_dir("adamw-resumed"));
    again.optimizer = "adamw";
    again.lr = 2e-3;
    again.epochs = 4;
    again.resume = out + "/cpu.safetensors";
    const Report resumed = run(again);
    REQUIRE(resumed.epochs.size() == 4);
    // The resumed epochs 1-3 are the first run's history; epoch 4 trained on.
    REQUIRE(resumed.epochs[2].train_loss == r.epochs[2].train_loss);
    REQUIRE(std::isfinite(resumed.epochs[3].train_loss));
    // An SGD run cannot resume from AdamW's checkpoint: the error names both.
    Options wrong = again;
    wrong.optimizer = "sgd";
    wrong.out = fresh_dir("adamw-wrong");
    REQUIRE_THROWS_WITH(run(wrong), Catch::Contains("AdamW") && Catch::Contains("SGD"));
}

TEST_CASE("trainer: the predict subcommand is parsed and says what is missing", "[trainer]") {
    const CommandLine p = parse_command_line({"predict", "--checkpoint", "out/cpu.safetensors", "a.jpg", "b.png"});
    REQUIRE(p.action == CommandLine::Action::predict);
    REQUIRE(p.predict.checkpoint == "out/cpu.safetensors");
    REQUIRE(p.predict.images == std::vector<std::string>{"a.jpg", "b.png"});
    REQUIRE(parse_command_line({"--epochs", "2"}).action == CommandLine::Action::train);
    const CommandLine help = parse_command_line({"predict", "--help"});
    REQUIRE(help.action == CommandLine::Action::help);
    REQUIRE_THAT(help.help, Catch::Contains("--checkpoint") && Catch::Contains("PNG"));
    REQUIRE_THROWS_WITH(parse_command_line({"predict"}),
                        Catch::Contains("--checkpoint FILE is missing") && Catch::Contains("dyad-out/cpu.safetensors"));
    REQUIRE_THROWS_WITH(parse_command_line({"predict", "a.jpg"}), Catch::Contains("--checkpoint FILE is missing"));
    REQUIRE_THROWS_WITH(parse_command_line({"predict", "--checkpoint", "c.safetensors"}),
                        Catch::Contains("no image given") && Catch::Contains("c.safetensors"));
    // parse_options takes the training flags only.
    Options o;
    std::string h;
    REQUIRE_THROWS_WITH(parse_options({"predict", "--checkpoint", "c", "a.jpg"}, &o, &h), Catch::Contains("predict"));
}

TEST_CASE("trainer: a config file holds the same options and the command line takes precedence", "[trainer]") {
    const std::string dir = fresh_dir("config");
    Options o;
    o.data = dir + "/a folder with spaces and 'quotes'";
    o.devices = {"cpu", "naive"};
    o.naive_steps = 3;
    o.model = "resnet18";
    o.epochs = 7;
    o.batch_size = 48;
    o.optimizer = "adamw";
    o.lr = 0.0123456789012345;  // every digit must survive
    o.momentum = 0.85;
    o.weight_decay = 1e-5;
    o.schedule = "step";
    o.seed = 18446744073709551557ull;  // the largest 64-bit prime: beyond a signed 64-bit integer
    o.threads = 3;
    o.limit_train = 1000;
    o.limit_val = 200;
    o.max_steps = 9;
    o.precision = "bf16";
    o.cpu_conv = "winograd2";
    o.memory_format = "channels_last";
    o.graph = false;
    o.out = dir + "/out";
    o.resume = dir + "/out/cpu.safetensors";
    o.profile = false;
    o.quiet = true;
    const std::string text = config_text(o);
    const std::string file = dir + "/config.toml";
    {
        std::ofstream f(file);
        f << text;
    }
    Options back;
    std::string help;
    REQUIRE(parse_options({"--config", file}, &back, &help));
    CHECK(back.data == o.data);
    CHECK(back.devices == o.devices);
    CHECK(back.naive_steps == o.naive_steps);
    CHECK(back.model == o.model);
    CHECK(back.epochs == o.epochs);
    CHECK(back.batch_size == o.batch_size);
    CHECK(back.optimizer == o.optimizer);
    CHECK(back.lr == o.lr);
    CHECK(back.momentum == o.momentum);
    CHECK(back.weight_decay == o.weight_decay);
    CHECK(back.schedule == o.schedule);
    CHECK(back.seed == o.seed);
    CHECK(back.threads == o.threads);
    CHECK(back.limit_train == o.limit_train);
    CHECK(back.limit_val == o.limit_val);
    CHECK(back.max_steps == o.max_steps);
    CHECK(back.precision == o.precision);
    CHECK(back.cpu_conv == o.cpu_conv);
    CHECK(back.memory_format == o.memory_format);
    CHECK(back.graph == o.graph);
    CHECK(back.out == o.out);
    CHECK(back.resume == o.resume);
    CHECK(back.profile == o.profile);
    CHECK(back.quiet == o.quiet);
    CHECK(config_text(back) == text);
    // A flag on the command line wins over the file; the rest still comes from the file.
    Options mixed;
    REQUIRE(parse_options({"--epochs", "2", "--config", file, "--device", "cpu"}, &mixed, &help));
    CHECK(mixed.epochs == 2);
    CHECK(mixed.devices == std::vector<std::string>{"cpu"});
    CHECK(mixed.lr == o.lr);

    // Bad config files: the error names the key (or the file) and the value.
    auto config_error = [&](const std::string& name, const std::string& contents) {
        const std::string path = dir + "/" + name;
        std::ofstream(path) << contents;
        Options fresh;
        std::string message;
        try {
            parse_options({"--config", path}, &fresh, &help);
        } catch (const Error& e) {
            message = e.what();
        }
        return message;
    };
    CHECK_THAT(config_error("zero.toml", "epochs=0\n"), Catch::Contains("--epochs") && Catch::Contains("got 0"));
    CHECK_THAT(config_error("model.toml", "model=\"vgg\"\n"), Catch::Contains("--model") && Catch::Contains("vgg"));
    CHECK_THAT(config_error("unknown.toml", "epochs=2\nlearning-rate=0.1\n"), Catch::Contains("learning-rate"));
    CHECK_THAT(config_error("device.toml", "device=\"cpu,tpu\"\n"),
               Catch::Contains("--device") && Catch::Contains("tpu"));
    Options fresh;
    REQUIRE_THROWS_WITH(parse_options({"--config", dir + "/missing.toml"}, &fresh, &help),
                        Catch::Contains("--config") && Catch::Contains(dir + "/missing.toml"));
    // A value CLI11's reader would cut ('#' starts a comment even inside quotes) is refused by name.
    Options hash = o;
    hash.out = dir + "/run#2";
    REQUIRE_THROWS_WITH(config_text(hash), Catch::Contains("run#2"));
    Options quotes = o;
    quotes.data = "a 'b' \"c\"";
    REQUIRE_THROWS_WITH(config_text(quotes), Catch::Contains("--data"));
}

TEST_CASE("trainer: a run writes its configuration and --config repeats it exactly", "[trainer]") {
    Options o = small(fresh_dir("config-run"));
    o.epochs = 1;
    o.limit_train = 64;
    o.limit_val = 32;
    o.lr = 0;  // the defaults, resolved in the file
    o.batch_size = 0;
    o.threads = 0;
    const Report first = run(o);
    const std::string file = o.out + "/config.toml";
    Options again;
    std::string help;
    const std::string out2 = fresh_dir("config-run-again");
    REQUIRE(parse_options({"--config", file, "--out", out2}, &again, &help));
    // Every default resolved: the learning rate and batch size (the generated set's), the weight decay, the
    // thread count and the devices.
    CHECK(again.lr == 0.01);
    CHECK(again.batch_size == 32);
    CHECK(again.weight_decay == effective_weight_decay(o));
    CHECK(again.threads == num_threads());
    CHECK(again.devices == std::vector<std::string>{"cpu"});
    CHECK(again.epochs == 1);
    CHECK(again.data == "generated");
    const Report second = run(again);
    REQUIRE(second.epochs.size() == first.epochs.size());
    CHECK(second.epochs[0].train_loss == first.epochs[0].train_loss);
    CHECK(second.epochs[0].val_loss == first.epochs[0].val_loss);
}

TEST_CASE("trainer: without a GPU the devices say so plainly", "[trainer]") {
    std::string note;
    // The default list on a machine without a GPU: the CPU, and one line saying why there is no GPU column.
    CHECK(choose_backends({}, false, false, &note) == std::vector<std::string>{"cpu"});
    CHECK_THAT(note, Catch::Contains("no GPU column") && Catch::Contains("no CUDA backend"));
    CHECK(choose_backends({}, false, true, &note) == std::vector<std::string>{"cpu"});
    CHECK_THAT(note, Catch::Contains("no GPU column") && Catch::Contains("no GPU was found"));
    CHECK(std::count(note.begin(), note.end(), '\n') == 1);
    CHECK(choose_backends({}, true, true, &note) == std::vector<std::string>{"cpu", "cuda"});
    CHECK(note.empty());
    // cuda among others is skipped with the reason; cuda alone is an error saying what to run instead.
    CHECK(choose_backends({"cpu", "cuda"}, false, true, &note) == std::vector<std::string>{"cpu"});
    CHECK_THAT(note, Catch::Contains("cuda: skipped: no GPU was found"));
    REQUIRE_THROWS_WITH(choose_backends({"cuda"}, false, true, &note),
                        Catch::Contains("--device cuda: no GPU was found") && Catch::Contains("--device cpu"));
    REQUIRE_THROWS_WITH(choose_backends({"cuda"}, false, false, &note),
                        Catch::Contains("this build of dyad has no CUDA backend") && Catch::Contains("--device cpu"));
    CHECK(choose_backends({"naive", "cuda"}, true, true, &note) == std::vector<std::string>{"naive", "cuda"});
    // The real run: on this machine without a GPU, --device cuda fails at once with the same words.
    if (!cuda_available()) {
        Options o = small(fresh_dir("no-gpu"));
        o.devices = {"cuda"};
        REQUIRE_THROWS_WITH(run(o), Catch::Contains("--device cuda: no GPU") && Catch::Contains("--device cpu"));
        REQUIRE_FALSE(std::filesystem::exists(o.out + "/generated-data"));  // refused before any work
    }
}
