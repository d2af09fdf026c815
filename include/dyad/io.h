// Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header mapping each
// tensor name to {"dtype", "shape", "data_offsets"} (plus an optional "__metadata__" map of strings), then
// the raw little-endian data. Python's safetensors.torch.load_file reads these files, and a PyTorch model
// of the same structure loads the model tensors with load_state_dict.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dyad/nn.h"
#include "dyad/optim.h"
#include "dyad/tensor.h"

namespace dyad::io {

using Metadata = std::map<std::string, std::string>;

// Writes `tensors` (any device; copied to the CPU) and `metadata`. Atomic: the data goes to a temporary
// file in the same directory, is flushed and fsync'ed, then renamed over `path`; a failure leaves any
// existing file untouched. Names must be unique and non-empty. dtypes: F32, F64, I32, U8.
void save_tensors(const std::string& path, const nn::NamedTensors& tensors, const Metadata& metadata = {});

// Reads every tensor (CPU) in file order. Validates everything before returning: the header length is
// within the file and below 100 MB, the JSON is well formed, dtypes are known (F32, F64, I32, U8, and I64,
// which is narrowed to int32 when every value fits), shapes are non-negative with no overflow, byte
// ranges match the shape, are contiguous, in order and exactly cover the data. Any defect is a
// dyad::Error naming the file, the tensor and the problem.
nn::NamedTensors load_tensors(const std::string& path, Metadata* metadata = nullptr);

// A training checkpoint: the module's state_dict under its own names (PyTorch-compatible), optimizer
// state under "optimizer.<name>", and in the metadata: "format" = "dyad", "optimizer.step",
// "optimizer.lr", "rng" (the manual_seed generator's state) plus the caller's entries (e.g. "epoch").
void save(const std::string& path, const nn::Module& model, const optim::Sgd* optimizer = nullptr,
          const Metadata& extra = {});
// Loads a checkpoint written by save() (or any safetensors file with the module's names). Checks every
// tensor the module expects against the file (presence, shape) and, with an optimizer, the optimizer
// entries, before changing anything: a checkpoint of another model leaves the module unchanged and the
// error lists the mismatches. Restores the generator state when the file has one. Returns the metadata.
Metadata load(const std::string& path, nn::Module& model, optim::Sgd* optimizer = nullptr);

}  // namespace dyad::io
