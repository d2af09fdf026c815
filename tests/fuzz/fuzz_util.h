// Shared by the libFuzzer targets and the seed-corpus generator (fuzz_seeds.cpp).
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "dyad/nn.h"

namespace dyad::fuzz {

// The fingerprint of the data-set caches in the seed corpus, which fuzz_cache passes to read_cache so that
// mutated inputs get past the fingerprint check to the shapes and class lists.
constexpr const char* kCacheFingerprint = "dyad fuzz corpus v1";

// fuzz_tiny_imagenet takes wnids.txt, words.txt and val/val_annotations.txt in one input, separated by this
// byte (the ASCII record separator); a third separator and what follows belong to the annotations.
constexpr char kTextSeparator = '\x1e';

// The model that fuzz_checkpoint loads checkpoints into and whose checkpoints seed its corpus: every kind of
// entry (conv, batch-norm parameters and buffers, linear) with few values, so that inputs stay small.
inline std::shared_ptr<nn::Sequential> small_model() {
    return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Conv2d>(1, 2, 3, 1, 1), std::make_shared<nn::BatchNorm2d>(2), std::make_shared<nn::ReLU>(),
        std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(32, 3)});
}

// Splits an input into at most `parts` texts at kTextSeparator (missing ones are empty).
inline std::vector<std::string> split_texts(const uint8_t* data, size_t size, size_t parts) {
    std::vector<std::string> out(parts);
    size_t k = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == uint8_t(kTextSeparator) && k + 1 < parts) {
            k++;
            continue;
        }
        out[k].push_back(char(data[i]));
    }
    return out;
}

// Prints a message and aborts: what the fuzzer reports as a crash (for results the API must never give).
[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "fuzz target invariant broken: %s\n", what);
    std::abort();
}

// A file that holds one input at a time, for readers that take a path. It lives in a directory of this
// process's own, in /dev/shm when it exists (no disk traffic), else in $TMPDIR or /tmp; both are removed
// when the process exits normally.
class ScratchFile {
public:
    explicit ScratchFile(const std::string& name) {
        struct stat st {};
        const char* tmp = std::getenv("TMPDIR");
        std::string base = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : (tmp != nullptr && *tmp != '\0' ? tmp : "/tmp");
        std::string pattern = base + "/dyad-fuzz-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::perror(("mkdtemp " + pattern).c_str());
            std::abort();
        }
        dir_ = pattern;
        path_ = dir_ + "/" + name;
    }
    ~ScratchFile() {
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    const std::string& path() const { return path_; }

    // Replaces the file's contents with [data, data + size).
    void write(const uint8_t* data, size_t size) const {
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            std::perror(("open " + path_).c_str());
            std::abort();
        }
        for (size_t done = 0; done < size;) {
            const ssize_t w = ::write(fd, data + done, size - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                std::perror(("write " + path_).c_str());
                std::abort();
            }
            done += size_t(w);
        }
        ::close(fd);
    }

private:
    std::string dir_, path_;
};

}  // namespace dyad::fuzz
