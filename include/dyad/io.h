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

#include "dyad/export.h"
#include "dyad/nn.h"
#include "dyad/optim.h"
#include "dyad/tensor.h"

DYAD_PUBLIC_BEGIN

namespace dyad::io {

using Metadata = std::map<std::string, std::string>;

// Writes `tensors` (any device; copied to the CPU) and `metadata`. Atomic: the data goes to a temporary
// file in the same directory, is flushed and fsync'ed, then renamed over `path`; a failure removes the
// temporary file, leaves any existing file untouched and throws naming the path and errno's text. Names
// must be unique, non-empty and not "__metadata__"; names and metadata must be valid UTF-8 (JSON text is).
// dtypes: F32, F64, I32, I64, U8. Tensors are written in the given order with contiguous data offsets; the
// JSON header is padded with spaces to a multiple of 8.
void save_tensors(const std::string& path, const nn::NamedTensors& tensors, const Metadata& metadata = {});

// Reads every tensor (CPU) in the header's order. Validates everything before returning: the header
// length is within the file and below 100 MB, the JSON is well formed (no key repeated in an object,
// integers within int64, no floating-point number where an integer is due), dtypes are known (F32, F64, I32,
// I64, U8; each read as the dtype of the same name), shapes are non-negative with no
// overflow, each byte range [begin, end] has begin <= end and matches the shape, and the ranges taken in
// offset order are contiguous and exactly cover the data (no gap, overlap or trailing bytes; like the
// reference implementation, the header may list them in another order). Any defect is a dyad::Error
// naming the file, the tensor and the problem. The data is read in one sequential pass.
nn::NamedTensors load_tensors(const std::string& path, Metadata* metadata = nullptr);

// A training checkpoint: the module's state_dict under its own names (PyTorch-compatible), the optimizer's
// state_dict under "optimizer.<name>" ("optimizer.momentum_buffer.<param>", "optimizer.exp_avg.<param>",
// ...), and in the metadata: "format" = "dyad", "optimizer.type" ("SGD", "Adam", "AdamW"),
// "optimizer.step", "optimizer.lr" (group 0) and "optimizer.lr.<g>" (other groups), "rng" (the
// manual_seed generator's state as four 16-digit hex words), "checksum" (16 hex digits over every tensor
// and metadata entry), plus the caller's entries (e.g. "epoch"; "format", "rng", "checksum" and every
// "optimizer." key are reserved).
void save(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer = nullptr,
          const Metadata& extra = {});
// Loads a checkpoint written by save() (or any safetensors file with the module's names). Checks every
// tensor the module expects against the file (presence, shape) and, with an optimizer, the optimizer's
// entries (optim::Optimizer::check_state_dict) and type, before changing anything: a checkpoint of
// another model or optimizer leaves both unchanged and the error lists the mismatches (missing names,
// unexpected names, shapes, floating-point values for an integer tensor). Without an optimizer, the file's
// "optimizer." entries are ignored. A file with a "checksum" entry must match it (a damaged file is an
// error, and nothing changes). Then loads the state_dict, the optimizer's state, step count and learning
// rates. The generator state in the file is restored only with restore_rng (resuming a run exactly):
// loading weights must not change the random stream of other code. Returns the metadata.
Metadata load(const std::string& path, nn::Module& model, optim::Optimizer* optimizer = nullptr,
              bool restore_rng = false);

// Replaces the file at `path` with `bytes` atomically (a temporary file next to it, fsync, rename): a reader
// sees the old file or the new one, never a part, and a failure leaves the old one. Errors are dyad::Error
// naming `op`, the path, the failed step and the system's reason.
void write_file_atomic(const std::string& path, const std::string& bytes, const char* op = "write_file_atomic");

}  // namespace dyad::io

DYAD_PUBLIC_END
