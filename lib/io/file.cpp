// POSIX file helpers (see file.h).
#include "lib/io/file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dyad::io::detail {

bool write_all(int fd, const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
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

}  // namespace dyad::io::detail
