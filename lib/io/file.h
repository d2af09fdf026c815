// POSIX file helpers shared by the file formats (safetensors checkpoints, data-set caches, the trainer's
// reports): whole reads and writes that retry on EINTR, the directory of a path, errno as text, and the
// atomic replacement of a file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace dyad::io::detail {

// Writes all of [p, p + n) to fd; false on error (errno set).
bool write_all(int fd, const void* p, size_t n);

// Fault injection for the reliability tests. Once `after_bytes` more bytes have gone through write_all (in
// any thread), the write that crosses the limit writes only up to it and then, with `err` != 0, fails with
// errno `err` (ENOSPC: the disk is full), as does every later write; with `err` == 0 the process kills
// itself with SIGKILL at that point (a crash in the middle of writing a file). clear_write_fault() ends it.
void inject_write_fault(int64_t after_bytes, int err);
void clear_write_fault();
// Reads exactly n bytes unless the file ends or fails first; returns the count read (errno set on error).
size_t read_all(int fd, void* p, size_t n);
// "dir" for "dir/name", "." for "name", "/" for "/name".
std::string directory_of(const std::string& path);
std::string errno_text(int err);

// Closes a file descriptor (one opened for reading) when it goes out of scope.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd();
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// Writes a file atomically: the bytes go to a unique temporary file next to `path`, which commit() fsyncs
// and renames over `path` (then fsyncs the directory, so the rename is durable). On any failure, and when
// destroyed before commit(), the temporary file is removed and `path` is left as it was. A process killed
// mid-write leaves its temporary file ("<path>.tmp.<pid>.<n>", never read); the next commit to the same
// path removes those of processes that no longer exist. Errors are
// dyad::Error "<op>: cannot write '<path>': <step> of '<temporary>' failed: <errno text>".
class AtomicFile {
public:
    AtomicFile(const char* op, std::string path);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    void write(const void* p, size_t n);
    void commit();

private:
    [[noreturn]] void fail(const char* step, int err);
    void remove_stale_temporaries() const;
    const char* op_;
    std::string path_, tmp_;
    int fd_ = -1;
};

}  // namespace dyad::io::detail
