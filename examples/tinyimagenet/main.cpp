// dyad-tinyimagenet: trains the same network on the CPU and on the GPU from the same weights and batches,
// times both, and writes loss and accuracy curves and a report. `predict` prints a checkpoint's top-5
// classes for JPEG files. See examples/tinyimagenet/README.md.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "dyad/device.h"
#include "trainer.h"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_interrupt(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (!args.empty() && args[0] == "predict") {
            std::string checkpoint;
            std::vector<std::string> images;
            for (size_t i = 1; i < args.size(); i++) {
                if (args[i] == "--checkpoint" && i + 1 < args.size())
                    checkpoint = args[++i];
                else
                    images.push_back(args[i]);
            }
            if (checkpoint.empty() || images.empty()) {
                std::fprintf(stderr, "%s", dyad::trainer::usage().c_str());
                return 2;
            }
            std::printf("%s", dyad::trainer::predict(checkpoint, images).c_str());
            return 0;
        }
        dyad::trainer::Options options;
        std::string help;
        if (!dyad::trainer::parse_options(args, &options, &help)) {
            std::printf("%s", help.c_str());
            return 0;
        }
        // Ctrl-C: finish the current step, save a checkpoint and the metrics so far, then exit.
        std::signal(SIGINT, on_interrupt);
        dyad::trainer::run(options, &g_stop);
        dyad::cuda::shutdown();  // the run's models and tensors are gone: release the GPU while cuDNN is loaded
        return g_stop.load() ? 130 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dyad-tinyimagenet: %s\n", e.what());
        return 1;
    }
}
