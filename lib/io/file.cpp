// POSIX file helpers (see file.h).
#include "lib/io/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "dyad/error.h"
#include "dyad/io.h"

namespace dyad::io::detail {

namespace {
// Bytes left before the injected fault (-1: none) and what it does.
std::atomic<int64_t> g_fault_budget{-1};
std::atomic<int> g_fault_errno{0};

bool write_all_unchecked(int fd, const char* c, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        c += w;
        n -= size_t(w);
    }
    return true;
}
}  // namespace

void inject_write_fault(int64_t after_bytes, int err) {
    g_fault_errno.store(err);
    g_fault_budget.store(after_bytes < 0 ? 0 : after_bytes);
}

void clear_write_fault() { g_fault_budget.store(-1); }

Fd::~Fd() {
    if (fd_ >= 0) ::close(fd_);
}

bool write_all(int fd, const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    if (g_fault_budget.load(std::memory_order_relaxed) >= 0) {
        const int64_t left = g_fault_budget.fetch_sub(int64_t(n));
        if (left < int64_t(n)) {
            const size_t allowed = left > 0 ? size_t(left) : 0;
            g_fault_budget.store(0);
            if (allowed > 0 && !write_all_unchecked(fd, c, allowed)) return false;
            if (g_fault_errno.load() == 0) ::raise(SIGKILL);
            errno = g_fault_errno.load();
            return false;
        }
    }
    return write_all_unchecked(fd, c, n);
}

size_t read_all(int fd, void* p, size_t n) {
    char* c = static_cast<char*>(p);
    size_t done = 0;
    while (done < n) {
        const ssize_t r = ::read(fd, c + done, n - done);
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (r == 0) break;
        done += size_t(r);
    }
    return done;
}

std::string directory_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string errno_text(int err) { return std::strerror(err); }

AtomicFile::AtomicFile(const char* op, std::string path) : op_(op), path_(std::move(path)) {
    DYAD_CHECK(!path_.empty(), op_, ": the output path is empty");
    // A unique name in the target directory, so that rename() replaces the file atomically.
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0;; attempt++) {
        tmp_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ >= 0) break;
        const int err = errno;
        DYAD_CHECK(err == EEXIST && attempt < 100, op_, ": cannot write '", path_, "': creating '", tmp_,
                   "' failed: ", errno_text(err));
    }
}

AtomicFile::~AtomicFile() {
    if (tmp_.empty()) return;  // committed
    if (fd_ >= 0) ::close(fd_);
    ::unlink(tmp_.c_str());
}

void AtomicFile::fail(const char* step, int err) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
    const std::string tmp = tmp_;
    tmp_.clear();
    ::dyad::detail::fail(
        __FILE__, __LINE__,
        ::dyad::detail::str(op_, ": cannot write '", path_, "': ", step, " of '", tmp, "' failed: ", errno_text(err)));
}

void AtomicFile::remove_stale_temporaries() const {
    // "<name>.tmp.<pid>.<n>" of a process that no longer exists: a writer that was killed mid-write.
    const std::string dir = directory_of(path_);
    const size_t slash = path_.find_last_of('/');
    const std::string prefix = (slash == std::string::npos ? path_ : path_.substr(slash + 1)) + ".tmp.";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.compare(0, prefix.size(), prefix) != 0) continue;
        char* end = nullptr;
        const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
        if (pid <= 0 || !end || *end != '.' || pid == long(::getpid())) continue;
        if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
}

void AtomicFile::write(const void* p, size_t n) {
    if (n && !write_all(fd_, p, n)) fail("write", errno);
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) fail("fsync", errno);
    const int closed = ::close(fd_);
    fd_ = -1;
    if (closed != 0) fail("close", errno);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("rename", errno);
    tmp_.clear();
    remove_stale_temporaries();
    // Make the rename itself durable; a failure here loses nothing that was asked for.
    const int dir = ::open(directory_of(path_).c_str(), O_RDONLY | O_CLOEXEC);
    if (dir >= 0) {
        (void)::fsync(dir);
        ::close(dir);
    }
}

}  // namespace dyad::io::detail

namespace dyad::io {

void write_file_atomic(const std::string& path, const std::string& bytes, const char* op) {
    detail::AtomicFile file(op, path);
    file.write(bytes.data(), bytes.size());
    file.commit();
}

}  // namespace dyad::io
