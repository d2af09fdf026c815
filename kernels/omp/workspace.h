// Per-thread scratch memory for the omp kernels.
#pragma once
#include <cstdint>
#include <new>

namespace dyad::omp {

// A float buffer kept between calls (it only grows), so that packing and column buffers do not
// page-fault on every call. Meant to be thread_local and sized by the calling thread before any parallel
// region, so that a failed allocation throws std::bad_alloc to the caller. 64-byte aligned for aligned
// vector loads.
class Workspace {
public:
    Workspace() = default;
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace() { ::operator delete(data_, std::align_val_t(64)); }
    float* get(int64_t floats) {
        if (floats > size_) {
            ::operator delete(data_, std::align_val_t(64));
            data_ = nullptr, size_ = 0;
            data_ = static_cast<float*>(::operator new(size_t(floats) * sizeof(float), std::align_val_t(64)));
            size_ = floats;
        }
        return data_;
    }

private:
    float* data_ = nullptr;
    int64_t size_ = 0;
};

}  // namespace dyad::omp
