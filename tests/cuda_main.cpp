// CUDA test runner: with no usable GPU it prints why and returns 77, which ctest reports as Skipped
// (never Passed). With a GPU it runs the Catch2 tests in this executable.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "dyad/device.h"

int main(int argc, char** argv) {
    if (!dyad::cuda_available()) {
        std::printf("CUDA tests skipped: %s\n", dyad::cuda_built()
                                                    ? "no usable CUDA device (driver or GPU missing)"
                                                    : "this build has no CUDA backend (DYAD_WITH_CUDA off)");
        return 77;
    }
    std::printf("CUDA device 0: %s\n", dyad::cuda_device_name(0).c_str());
    return Catch::Session().run(argc, argv);
}
