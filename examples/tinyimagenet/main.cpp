// dyad-tinyimagenet: trains the same network on the CPU and on the GPU from the same weights and batches,
// times both, and writes loss and accuracy curves and a report. `predict` prints a checkpoint's top-5
// classes for JPEG and PNG files. See examples/tinyimagenet/README.md.
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "dyad/device.h"
#include "dyad/dist.h"
#include "trainer.h"

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_interrupt(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
    using dyad::trainer::CommandLine;
    try {
        const CommandLine cl = dyad::trainer::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
        if (cl.action == CommandLine::Action::help) {
            std::printf("%s", cl.help.c_str());
            return 0;
        }
        if (cl.action == CommandLine::Action::study) {
            dyad::trainer::run_study(cl.study);
            dyad::cuda::shutdown();
            return 0;
        }
        if (cl.action == CommandLine::Action::predict) {
            std::printf("%s", dyad::trainer::predict(cl.predict.checkpoint, cl.predict.images).c_str());
            return 0;
        }
        // Under mpirun (or srun) every rank trains its share of each batch: data-parallel, nothing else to set.
        if (dyad::dist::launched()) dyad::dist::init();
        // Ctrl-C: finish the current step, save a checkpoint and the metrics so far, then exit.
        std::signal(SIGINT, on_interrupt);
        dyad::trainer::run(cl.options, &g_stop);
        dyad::cuda::shutdown();  // the run's models and tensors are gone: release the GPU while cuDNN is loaded
        dyad::dist::finalize();
        return g_stop.load() ? 130 : 0;
    } catch (const std::exception& e) {
        // One rank's error would leave the others waiting in their next collective: end them all now.
        if (dyad::dist::world_size() > 1) dyad::dist::abort(1, std::string("dyad-tinyimagenet: ") + e.what());
        std::fprintf(stderr, "dyad-tinyimagenet: %s\n", e.what());
        return 1;
    }
}
