// The trainer behind dyad-tinyimagenet: options, data set selection, one training run per backend from the
// same initial weights and batches, validation, per-layer profiling, checkpoints and the report.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "report.h"
#include "study.h"

namespace dyad::trainer {

struct Options {
    std::string data;                  // "" = Fashion-MNIST; "generated"; or a tiny-imagenet-200 folder
    std::vector<std::string> devices;  // "cpu", "cuda", "naive"; empty = cpu, plus cuda when a GPU is present
    std::string model = "baseline";    // baseline | resnet18
    int epochs = 0;                    // 0 = the data set's default: Fashion-MNIST 3, generated 5, Tiny ImageNet 30
    int64_t batch_size = 0;            // 0 = the data set's default: generated 32, otherwise 128
    std::string optimizer = "sgd";     // sgd | adamw
    // 0 / negative: the optimizer's default (SGD: lr 0.05, 0.01 on generated, weight decay 5e-4; AdamW: lr
    // 1e-3, weight decay 0.05 on weights only, biases and batch-norm parameters exempt). momentum: SGD's
    // (AdamW's beta1 is 0.9).
    double lr = 0, momentum = 0.9, weight_decay = -1;
    std::string schedule = "cosine";  // cosine | step | none
    uint64_t seed = 1;
    int threads = 0;                         // omp threads (0 = all cores)
    int64_t limit_train = 0, limit_val = 0;  // 0 = all
    int64_t max_steps = 0;                   // training steps per epoch (0 = all; for timing runs)
    int64_t naive_steps = 0;                 // the naive backend's steps and validation batches per epoch (0 = all)
    std::string precision = "fp32";          // fp32 | tf32 | bf16 (GPU; bf16: bfloat16 activations)
    std::string memory_format = "nchw";      // nchw | channels_last (images, weights, activations and gradients)
    std::string cpu_conv = "automatic";      // automatic | im2col | winograd2 | winograd4 (CPU 3x3 conv)
    bool graph = true;                       // GPU: capture the step in a CUDA graph and replay it
    bool sync_bn = false;                    // under mpirun: batch-norm statistics over every rank's share (the ResNet)
    std::string out = "dyad-out";
    std::string resume;   // a checkpoint written by a previous run of one backend
    bool profile = true;  // per-layer timing at the end (sequential models)
    bool quiet = false;   // no progress output (tests)
};

// The machine's CPU model ("AMD EPYC ...", from /proc/cpuinfo) and the time now ("2026-12-06 17:05 UTC"), for
// the facts of a report.
std::string cpu_model();
std::string today();
// What a reader needs to compare reports from two machines: "CPU" (model, logical CPUs, cores, vector
// extensions, the `threads` used), "memory", "GPU" (every device's name with the CUDA runtime, driver,
// cuBLAS and cuDNN versions; or why there is none).
std::vector<std::pair<std::string, std::string>> machine_facts(int threads);

// The backends a run trains on: `devices` in order, or (when empty) cpu plus cuda when a GPU was found. Without
// a GPU, cuda is dropped and *note says why (no GPU found, or a build without a CUDA backend); with the default
// list *note says the report has no GPU column, and why. When nothing is left (--device cuda alone) it throws
// saying that no GPU was found and to use --device cpu. *note is "" when there is nothing to say.
std::vector<std::string> choose_backends(const std::vector<std::string>& devices, bool gpu_found, bool cuda_built,
                                         std::string* note);

// The learning rate and weight decay a run uses: the options' own, or the optimizer's defaults.
double effective_lr(const Options& o);
double effective_weight_decay(const Options& o);

// Fills in what depends on the data set (`data_name` as TrainData::name) where the options leave it to the
// default: epochs, batch size, and SGD's learning rate on the generated set.
void apply_data_defaults(Options* o, const std::string& data_name);

// The predict subcommand's arguments.
struct PredictOptions {
    std::string checkpoint;
    std::vector<std::string> images;
};

// What a command line asks for: a training run, predictions, or the help text.
struct CommandLine {
    enum class Action { train, predict, study, help };
    Action action = Action::train;
    Options options;         // train
    PredictOptions predict;  // predict
    StudyOptions study;      // study
    std::string help;        // help: the text (of the program, or of `predict --help`)
};

// Parses a command line (argv without the program name): the training flags, `--config FILE` (a TOML file of
// the same options, as config_text writes it; flags on the command line take precedence) and the `predict`
// subcommand. Throws dyad::Error naming the flag (or the config file's key) and the bad value, an unknown
// flag, or what predict is missing (--checkpoint, images).
CommandLine parse_command_line(const std::vector<std::string>& args);

// The training flags only (no subcommand), parsed onto *options. Returns false when --help was asked for
// (the help text is in *help); throws like parse_command_line.
bool parse_options(const std::vector<std::string>& args, Options* options, std::string* help);

// The options as the TOML file --config reads: every flag's name and value, with its help as a comment. run()
// writes it to OUT/config.toml with every default resolved, so `--config OUT/config.toml` repeats the run.
std::string config_text(const Options& options);

// The data as the trainer sees it: the split plus how to normalise and augment it.
struct TrainData {
    std::string name;  // "Fashion-MNIST", "Tiny ImageNet", "generated"
    data::Split split;
    std::vector<float> mean, std;
    ImageAugment train_augment, eval_augment;
    int64_t image_size = 0;  // side of the network's input
};
TrainData load_data(const Options& options, std::string* log);

// The stored image size and the network's input, named together the same way wherever the program shows
// them (load message, report, predict): "stored 28x28, network input 1x32x32 (padded)", or "stored 64x64,
// network input 3x64x64" when they agree.
std::string image_sizes(int64_t channels, int64_t stored, int64_t input);

// The model, freshly initialised from the generator (call manual_seed first for identical weights).
std::shared_ptr<nn::Module> make_model(const std::string& name, int64_t classes, int64_t channels, int64_t size);

// Forward and backward time of each leaf layer of any model (a ResNet's convolutions inside its blocks
// included), each run in isolation on the input it received in one real forward pass of the batch `x`,
// `reps` times after one warm-up run (the mean); the backward seeds with ones. A last row, "whole model",
// times the whole model, so what the leaves leave out (a ResNet's residual additions, functional flattens)
// shows as the difference. Buffers such as batch-norm running statistics are restored afterwards, and
// gradients are cleared.
std::vector<LayerTime> profile_layers(nn::Module& model, const Tensor& x, Device dev, int reps);

// Runs the whole study: every backend in turn, the report files in options.out. `stop` (set by Ctrl-C)
// ends training at the next step: the current state is checkpointed and the metrics so far written.
// Returns the report (also written to disk).
Report run(const Options& options, const std::atomic<bool>* stop = nullptr);

// Top-5 predictions of a checkpoint written by run() for JPEG or PNG files of any size (the shorter side
// resized to the training images' stored size, the centre cropped): a line naming the checkpoint's model and
// image sizes, then one block of lines per file.
std::string predict(const std::string& checkpoint, const std::vector<std::string>& images);

}  // namespace dyad::trainer
