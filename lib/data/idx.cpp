// IDX (MNIST-style) files, gzip-compressed or plain, and the Fashion-MNIST data set built from them.
// The header is big-endian: two zero bytes, a type byte (0x08: uint8, the only type read here), the number
// of dimensions (1: labels, 3: images), then one 32-bit size per dimension; the values follow in row-major
// order. read_idx reads the whole file and parses it in memory (detail::parse_idx, which the fuzz target
// calls too). Sizes are validated before anything is allocated: for plain data against the byte count, for
// gzip data against the most that deflate can expand its bytes to.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/data.h"
#include "lib/data/parse.h"

namespace dyad::data {

namespace {

constexpr uint64_t kMaxDeflateRatio = 1032;      // deflate never expands a byte stream by more than this
constexpr uint64_t kChunk = uint64_t(1) << 30;   // bytes per inflate call (its counts are 32-bit)
constexpr uint64_t kCountedTrailing = 1u << 20;  // trailing bytes counted for the message, at most

// The bytes of an IDX file as a stream: copied as they are, or inflated when they start with the gzip
// magic. Reading mirrors zlib's gzread: a truncated stream ends the data early and leaves
// "unexpected end of file" as the problem; damaged data is a read error with zlib's description.
class IdxSource {
public:
    IdxSource(const uint8_t* bytes, size_t n) : b_(bytes), n_(n) {
        gzip_ = n >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
        if (!gzip_) return;
        std::memset(&z_, 0, sizeof z_);
        const int r = inflateInit2(&z_, 16 + MAX_WBITS);  // gzip wrapper only
        if (r != Z_OK) {
            problem_ = r == Z_MEM_ERROR ? "out of memory" : "zlib error " + std::to_string(r);
            failed_ = true;
            return;
        }
        open_ = true;
    }
    ~IdxSource() {
        if (open_) inflateEnd(&z_);
    }
    IdxSource(const IdxSource&) = delete;
    IdxSource& operator=(const IdxSource&) = delete;

    bool plain() const { return !gzip_; }
    // zlib's description of what went wrong ("" when nothing did).
    const std::string& problem() const { return problem_; }

    // Reads up to n bytes; returns the count (short at the end of the data) or -1 on a read error.
    int64_t read(void* p, uint64_t n) {
        unsigned char* c = static_cast<unsigned char*>(p);
        if (!gzip_) {
            const uint64_t take = std::min<uint64_t>(n, n_ - pos_);
            if (take > 0) std::memcpy(c, b_ + pos_, size_t(take));
            pos_ += size_t(take);
            return int64_t(take);
        }
        if (failed_) return -1;
        uint64_t done = 0;
        while (done < n && !ended_) {
            if (pos_ == n_) {  // the input ends inside a gzip member
                problem_ = "unexpected end of file";
                ended_ = true;
                break;
            }
            z_.next_in = const_cast<Bytef*>(b_ + pos_);
            z_.avail_in = uInt(std::min<uint64_t>(n_ - pos_, kChunk));
            z_.next_out = c + done;
            z_.avail_out = uInt(std::min<uint64_t>(n - done, kChunk));
            const uInt in_before = z_.avail_in, out_before = z_.avail_out;
            const int r = inflate(&z_, Z_NO_FLUSH);
            pos_ += size_t(in_before - z_.avail_in);
            done += uint64_t(out_before - z_.avail_out);
            if (r == Z_STREAM_END) {
                // Another member follows, or the data ends here (anything else after a member is ignored).
                if (n_ - pos_ >= 2 && b_[pos_] == 0x1f && b_[pos_ + 1] == 0x8b) {
                    (void)inflateReset(&z_);
                } else {
                    ended_ = true;
                }
            } else if (r != Z_OK && !(r == Z_BUF_ERROR && pos_ == n_)) {
                problem_ = z_.msg != nullptr  ? std::string(z_.msg)
                           : r == Z_MEM_ERROR ? std::string("out of memory")
                                              : "zlib error " + std::to_string(r);
                failed_ = true;
                return -1;
            }
        }
        return int64_t(done);
    }

private:
    const uint8_t* b_;
    size_t n_;
    size_t pos_ = 0;  // input bytes consumed
    bool gzip_ = false, open_ = false, ended_ = false, failed_ = false;
    z_stream z_{};
    std::string problem_;
};

std::string with_reason(const std::string& reason) { return reason.empty() ? "" : " (" + reason + ")"; }

}  // namespace

namespace detail {

Tensor parse_idx(const uint8_t* data, size_t data_size, const std::string& path) {
#define DYAD_IDX_CHECK(cond, ...) DYAD_CHECK(cond, "read_idx: '", path, "': ", __VA_ARGS__)
    DYAD_IDX_CHECK(data_size > 0, "truncated header: the file is empty");
    const uint64_t file_size = uint64_t(data_size);
    IdxSource f(data, data_size);
    const bool plain = f.plain();

    // The fixed part of the header: 0, 0, type, number of dimensions.
    unsigned char head[4];
    const int64_t got = f.read(head, 4);
    DYAD_IDX_CHECK(got >= 0, "read error in the header", with_reason(f.problem()));
    DYAD_IDX_CHECK(got == 4, "truncated header: the ", plain ? "file" : "decompressed data", " ends after ", got,
                   " of the 4 magic bytes", with_reason(f.problem()));
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%02X%02X%02X%02X", head[0], head[1], head[2], head[3]);
    DYAD_IDX_CHECK(head[0] == 0 && head[1] == 0, "bad magic ", magic,
                   ": an IDX file starts with two zero bytes (0x00000803 images, 0x00000801 labels)");
    char type[8];
    std::snprintf(type, sizeof type, "0x%02X", head[2]);
    DYAD_IDX_CHECK(head[2] == 0x08, "magic ", magic, ": wrong type byte ", type,
                   ", only 0x08 (unsigned byte) is supported");
    const int ndims = head[3];
    DYAD_IDX_CHECK(ndims == 1 || ndims == 3, "magic ", magic, ": ", ndims,
                   " dimensions; expected 1 (labels, magic 0x00000801) or 3 (images, magic 0x00000803)");

    // The sizes.
    unsigned char size_bytes[12];
    const uint64_t size_len = uint64_t(4 * ndims);
    const int64_t got_sizes = f.read(size_bytes, size_len);
    DYAD_IDX_CHECK(got_sizes >= 0, "read error in the header", with_reason(f.problem()));
    DYAD_IDX_CHECK(uint64_t(got_sizes) == size_len, "truncated header: it ends after ", got_sizes, " of the ", size_len,
                   " bytes of dimension sizes", with_reason(f.problem()));
    Shape shape;
    for (int d = 0; d < ndims; d++) {
        const unsigned char* b = size_bytes + 4 * d;
        shape.push_back(
            int64_t((uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3])));
    }
    // Each size is below 2^32, so the product of three fits in 96 bits; check it against 2^62. The nonzero
    // sizes are checked even when another is 0 (no data): a tensor's strides are their products.
    uint64_t bytes = 1, nonzero = 1;
    for (const int64_t s : shape) {
        if (s == 0) {
            bytes = 0;
            continue;
        }
        DYAD_IDX_CHECK(nonzero <= (uint64_t(1) << 62) / uint64_t(s), "dimension sizes ", shape_str(shape),
                       " are too large");
        nonzero *= uint64_t(s);
        bytes *= uint64_t(s);
    }
    const uint64_t header_len = 4 + size_len;
    if (plain) {
        const uint64_t have = file_size - header_len;
        DYAD_IDX_CHECK(have >= bytes, "truncated data: the sizes ", shape_str(shape), " need ", bytes,
                       " bytes after the ", header_len, "-byte header, the file holds ", have);
        DYAD_IDX_CHECK(have == bytes, have - bytes, " trailing bytes after the ", bytes, " bytes of data for sizes ",
                       shape_str(shape));
    } else {
        DYAD_IDX_CHECK(bytes <= file_size * kMaxDeflateRatio, "truncated or damaged: the sizes ", shape_str(shape),
                       " need ", bytes, " bytes, more than a ", file_size, "-byte gzip file can hold");
    }

    Tensor out = Tensor::empty(shape, DType::uint8);
    const int64_t n = f.read(out.raw_data(), bytes);
    DYAD_IDX_CHECK(n >= 0, "read error in the data", with_reason(f.problem()));
    DYAD_IDX_CHECK(uint64_t(n) == bytes, "truncated data: the sizes ", shape_str(shape), " need ", bytes,
                   " bytes, the ", plain ? "file" : "decompressed data", " ends after ", n, with_reason(f.problem()));
    // Nothing may follow the data (count up to 1 MB of it for the message).
    char rest[1 << 16];
    int64_t extra = 0;
    while (uint64_t(extra) < kCountedTrailing) {
        const int64_t r = f.read(rest, std::min<uint64_t>(sizeof rest, kCountedTrailing - uint64_t(extra)));
        DYAD_IDX_CHECK(r >= 0, "read error after the data", with_reason(f.problem()));
        if (r == 0) break;
        extra += r;
    }
    DYAD_IDX_CHECK(extra == 0, uint64_t(extra) == kCountedTrailing ? "at least " : "", extra,
                   " trailing bytes after the ", bytes, " bytes of data for sizes ", shape_str(shape));
    return out;
#undef DYAD_IDX_CHECK
}

}  // namespace detail

Tensor read_idx(const std::string& path) {
#define DYAD_IDX_CHECK(cond, ...) DYAD_CHECK(cond, "read_idx: '", path, "': ", __VA_ARGS__)
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        DYAD_IDX_CHECK(false, "cannot open: ", std::strerror(err));
    }
    DYAD_IDX_CHECK(S_ISREG(st.st_mode), "not a regular file");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        const int err = errno;
        DYAD_IDX_CHECK(false, "cannot open: ", std::strerror(err));
    }
    // The whole file (it may have changed size since the stat: read to its end).
    std::vector<uint8_t> bytes(size_t(st.st_size));
    size_t have = std::fread(bytes.data(), 1, bytes.size(), f);
    for (char more[1 << 16]; have == bytes.size();) {
        const size_t r = std::fread(more, 1, sizeof more, f);
        if (r == 0) break;
        bytes.insert(bytes.end(), more, more + r);
        have += r;
    }
    const bool failed = std::ferror(f) != 0;
    const int err = errno;
    std::fclose(f);
    DYAD_IDX_CHECK(!failed, "read error: ", std::strerror(err));
    bytes.resize(have);
    return detail::parse_idx(bytes.data(), bytes.size(), path);
#undef DYAD_IDX_CHECK
}

Split load_fashion_mnist(const std::string& dir) {
    // The four files, gzip'd as distributed (an uncompressed copy without ".gz" is accepted too).
    const char* names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    std::string paths[4];
    std::string missing;
    for (int i = 0; i < 4; i++) {
        const std::string base = dir + "/" + names[i];
        struct stat st {};
        if (::stat((base + ".gz").c_str(), &st) == 0) {
            paths[i] = base + ".gz";
        } else if (::stat(base.c_str(), &st) == 0) {
            paths[i] = base;
        } else {
            missing += (missing.empty() ? "" : ", ") + std::string(names[i]) + ".gz";
        }
    }
    DYAD_CHECK(missing.empty(), "load_fashion_mnist: '", dir, "': missing ", missing,
               ". Run `bash scripts/setup.sh` (it installs the Debian package dataset-fashion-mnist into ",
               kFashionMnistDir, ") or pass the directory that holds the Fashion-MNIST files");

    const char* kNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    auto load = [&](const std::string& images_path, const std::string& labels_path) {
        const Tensor images = read_idx(images_path);
        const Tensor labels = read_idx(labels_path);
        DYAD_CHECK(images.dim() == 3, "load_fashion_mnist: '", images_path, "': holds sizes ",
                   shape_str(images.shape()), ", not images (count, rows, cols)");
        DYAD_CHECK(labels.dim() == 1, "load_fashion_mnist: '", labels_path, "': holds sizes ",
                   shape_str(labels.shape()), ", not labels (count)");
        DYAD_CHECK(images.size(0) == labels.size(0), "load_fashion_mnist: '", images_path, "' holds ", images.size(0),
                   " images but '", labels_path, "' holds ", labels.size(0), " labels");
        const uint8_t* l = labels.data<uint8_t>();
        for (int64_t i = 0; i < labels.numel(); i++) {
            DYAD_CHECK(l[i] < 10, "load_fashion_mnist: '", labels_path, "': label ", int(l[i]), " at index ", i,
                       " is outside [0, 10)");
        }
        Dataset d;
        d.images = images.reshape({images.size(0), images.size(1), images.size(2), 1});
        d.labels = labels.to(DType::int32);
        for (int c = 0; c < 10; c++) {
            d.class_ids.push_back(std::to_string(c));
            d.class_names.push_back(kNames[c]);
        }
        return d;
    };
    Split split;
    split.train = load(paths[0], paths[1]);
    split.val = load(paths[2], paths[3]);
    return split;
}

}  // namespace dyad::data
