// CUDA test runner: with no usable GPU it prints why and returns 77, which ctest reports as Skipped
// (never Passed). With a GPU it runs the Catch2 tests in this executable; listing them needs none.
#if DYAD_CATCH2_VERSION >= 3
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include <cstdio>
#include <cstring>

#include "dyad/device.h"

namespace {

// Listing the test cases or tags needs no GPU.
bool only_lists(int argc, char** argv) {
    for (int i = 1; i < argc; i++)
        for (const char* opt : {"-l", "--list-tests", "--list-test-names-only", "-t", "--list-tags"})
            if (std::strcmp(argv[i], opt) == 0) return true;
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    if (only_lists(argc, argv)) return Catch::Session().run(argc, argv);
    if (!dyad::cuda_available()) {
        std::printf("CUDA tests skipped: %s\n", dyad::cuda_built()
                                                    ? "no usable CUDA device (driver or GPU missing)"
                                                    : "this build has no CUDA backend (DYAD_WITH_CUDA off)");
        return 77;
    }
    std::printf("CUDA device 0: %s\n", dyad::cuda_device_name(0).c_str());
    std::printf("loaded: %s\nbuilt with: %s\n", dyad::cuda::versions().c_str(), dyad::cuda::built_versions().c_str());
    const int failed = Catch::Session().run(argc, argv);
    // Every test's tensors are gone: release cuBLAS, cuDNN and dyad's memory while the libraries are loaded,
    // so a leak checker sees everything freed.
    dyad::cuda::shutdown();
    return failed;
}
