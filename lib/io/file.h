// POSIX file helpers shared by the binary formats (safetensors checkpoints, data-set caches): whole reads
// and writes that retry on EINTR, the directory of a path (for fsync after a rename), errno as text.
#pragma once
#include <cstddef>
#include <string>

namespace dyad::io::detail {

// Writes all of [p, p + n) to fd; false on error (errno set).
bool write_all(int fd, const void* p, size_t n);
// Reads exactly n bytes unless the file ends or fails first; returns the count read (errno set on error).
size_t read_all(int fd, void* p, size_t n);
// "dir" for "dir/name", "." for "name", "/" for "/name".
std::string directory_of(const std::string& path);
std::string errno_text(int err);

}  // namespace dyad::io::detail
