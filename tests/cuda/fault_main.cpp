// A GPU fault must surface as a dyad::CudaError that says a kernel faulted and how to find it, never as a
// crash or a hang, and every later GPU op must fail the same way. Runs in a process of its own because a
// faulted CUDA context cannot be used again. Exit 0: the expected errors; 1: anything else; 77 (ctest:
// Skipped): no usable GPU.
#include <cstdio>
#include <string>

#include "dyad/dyad.h"

namespace dyad::test {
void launch_faulting_kernel(float* p);
}

namespace {

int fail(const char* what) {
    std::printf("FAILED: %s\n", what);
    return 1;
}

bool names_fault(const std::string& msg) {
    return msg.find("A GPU kernel faulted") != std::string::npos && msg.find("DYAD_CUDA_SYNC=1") != std::string::npos;
}

}  // namespace

int main() {
    using namespace dyad;
    if (!cuda_available()) {
        std::printf("CUDA fault test skipped: no usable CUDA device\n");
        return 77;
    }
    Tensor x = Tensor::ones({1024}).to(Device::cuda(0));
    test::launch_faulting_kernel(x.data<float>());
    // The next op that waits for the GPU reports the fault.
    std::string first;
    try {
        const Tensor y = relu(x);
        (void)sum(y).item();
        return fail("the fault was not reported");
    } catch (const CudaError& e) {
        first = e.what();
    } catch (const std::exception& e) {
        std::printf("unexpected exception: %s\n", e.what());
        return fail("the fault came as another exception type");
    }
    std::printf("first error: %s\n", first.c_str());
    if (!names_fault(first)) return fail("the message does not say that a kernel faulted and how to find it");
    // Later ops fail too, with the same explanation, instead of computing garbage.
    try {
        (void)sum(x + x).item();
        return fail("an op after the fault succeeded");
    } catch (const CudaError& e) {
        std::printf("later error: %s\n", e.what());
        if (!names_fault(e.what())) return fail("a later error does not say that a kernel faulted");
    }
    std::printf("OK\n");
    return 0;
}
