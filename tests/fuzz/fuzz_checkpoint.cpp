// Fuzz target: the safetensors reader (io::load_tensors) through a scratch file, and, for files it
// accepts, io::load into a small model (which checks every name and shape before changing anything):
// with an optimizer for inputs of odd size, without one otherwise.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "dyad/device.h"
#include "dyad/error.h"
#include "dyad/io.h"
#include "dyad/nn.h"
#include "dyad/optim.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    dyad::set_num_threads(1);  // the tensors are tiny: no thread pool per input
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const dyad::fuzz::ScratchFile file("checkpoint.safetensors");
    static const std::shared_ptr<dyad::nn::Sequential> model = dyad::fuzz::small_model();
    static dyad::optim::Sgd sgd(model->named_parameters(), dyad::optim::SgdOptions{0.1, 0.9});
    file.write(data, size);
    try {
        dyad::io::Metadata metadata;
        const dyad::nn::NamedTensors tensors = dyad::io::load_tensors(file.path(), &metadata);
        for (const auto& entry : tensors) {
            if (!entry.second.defined()) dyad::fuzz::fail("load_tensors returned an undefined tensor");
        }
    } catch (const dyad::Error&) {
        return 0;
    }
    try {
        (void)dyad::io::load(file.path(), *model, size % 2 == 1 ? &sgd : nullptr);
    } catch (const dyad::Error&) {
    }
    return 0;
}
