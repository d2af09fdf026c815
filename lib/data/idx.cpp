// IDX (MNIST-style) files, gzip-compressed or plain, and the Fashion-MNIST data set built from them.
// The header is big-endian: two zero bytes, a type byte (0x08: uint8, the only type read here), the number
// of dimensions (1: labels, 3: images), then one 32-bit size per dimension; the values follow in row-major
// order. Sizes are validated before anything is allocated: for a plain file against the file size, for a
// gzip file against the most that deflate can expand its bytes to.
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/data.h"

namespace dyad::data {

namespace {

constexpr uint64_t kMaxDeflateRatio = 1032;  // deflate never expands a byte stream by more than this
constexpr unsigned kChunk = 64u << 20;       // bytes per gzread call

// A zlib reading handle, closed on scope exit.
class GzFile {
public:
    explicit GzFile(gzFile f) : f_(f) {}
    ~GzFile() {
        if (f_ != nullptr) gzclose_r(f_);
    }
    GzFile(const GzFile&) = delete;
    GzFile& operator=(const GzFile&) = delete;
    gzFile get() const { return f_; }

private:
    gzFile f_;
};

// zlib's description of the handle's last error ("" when there is none), without the path zlib puts first.
std::string gz_problem(gzFile f, const std::string& path) {
    int code = Z_OK;
    const char* msg = gzerror(f, &code);
    if (code == Z_OK) return "";
    if (code == Z_ERRNO) return std::strerror(errno);
    std::string text = msg != nullptr ? msg : "zlib error " + std::to_string(code);
    if (text.compare(0, path.size() + 2, path + ": ") == 0) text.erase(0, path.size() + 2);
    return text;
}

// Reads up to n bytes; returns the count (short at the end of the data) or -1 on a read error.
int64_t gz_read_all(gzFile f, void* p, uint64_t n) {
    char* c = static_cast<char*>(p);
    uint64_t done = 0;
    while (done < n) {
        const unsigned want = unsigned(std::min<uint64_t>(n - done, kChunk));
        const int r = gzread(f, c + done, want);
        if (r < 0) return -1;
        if (r == 0) break;
        done += uint64_t(r);
    }
    return int64_t(done);
}

std::string with_reason(const std::string& reason) { return reason.empty() ? "" : " (" + reason + ")"; }

}  // namespace

Tensor read_idx(const std::string& path) {
#define DYAD_IDX_CHECK(cond, ...) DYAD_CHECK(cond, "read_idx: '", path, "': ", __VA_ARGS__)
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        DYAD_IDX_CHECK(false, "cannot open: ", std::strerror(err));
    }
    DYAD_IDX_CHECK(S_ISREG(st.st_mode), "not a regular file");
    const uint64_t file_size = uint64_t(st.st_size);
    DYAD_IDX_CHECK(file_size > 0, "truncated header: the file is empty");

    errno = 0;
    GzFile file(gzopen(path.c_str(), "rb"));
    if (file.get() == nullptr) {
        const int err = errno;
        DYAD_IDX_CHECK(false, "cannot open: ", err != 0 ? std::strerror(err) : "zlib could not allocate its state");
    }
    gzFile f = file.get();
    (void)gzbuffer(f, 1u << 20);
    const bool plain = gzdirect(f) == 1;  // zlib reads a file without a gzip header as it is

    // The fixed part of the header: 0, 0, type, number of dimensions.
    unsigned char head[4];
    const int64_t got = gz_read_all(f, head, 4);
    DYAD_IDX_CHECK(got >= 0, "read error in the header", with_reason(gz_problem(f, path)));
    DYAD_IDX_CHECK(got == 4, "truncated header: the ", plain ? "file" : "decompressed data", " ends after ", got,
                   " of the 4 magic bytes", with_reason(gz_problem(f, path)));
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
    const int64_t got_sizes = gz_read_all(f, size_bytes, size_len);
    DYAD_IDX_CHECK(got_sizes >= 0, "read error in the header", with_reason(gz_problem(f, path)));
    DYAD_IDX_CHECK(uint64_t(got_sizes) == size_len, "truncated header: it ends after ", got_sizes, " of the ", size_len,
                   " bytes of dimension sizes", with_reason(gz_problem(f, path)));
    Shape shape;
    for (int d = 0; d < ndims; d++) {
        const unsigned char* b = size_bytes + 4 * d;
        shape.push_back(
            int64_t((uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3])));
    }
    // Each size is below 2^32, so the product of three fits in 96 bits; check it against 2^62.
    uint64_t bytes = 1;
    for (const int64_t s : shape) {
        DYAD_IDX_CHECK(s == 0 || bytes <= (uint64_t(1) << 62) / uint64_t(s), "dimension sizes ", shape_str(shape),
                       " are too large");
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
    const int64_t n = gz_read_all(f, out.raw_data(), bytes);
    DYAD_IDX_CHECK(n >= 0, "read error in the data", with_reason(gz_problem(f, path)));
    DYAD_IDX_CHECK(uint64_t(n) == bytes, "truncated data: the sizes ", shape_str(shape), " need ", bytes,
                   " bytes, the ", plain ? "file" : "decompressed data", " ends after ", n,
                   with_reason(gz_problem(f, path)));
    // Nothing may follow the data (count up to 1 MB of it for the message).
    std::vector<char> rest(1u << 20);
    const int64_t extra = gz_read_all(f, rest.data(), rest.size());
    DYAD_IDX_CHECK(extra >= 0, "read error after the data", with_reason(gz_problem(f, path)));
    DYAD_IDX_CHECK(extra == 0, extra == int64_t(rest.size()) ? "at least " : "", extra, " trailing bytes after the ",
                   bytes, " bytes of data for sizes ", shape_str(shape));
    return out;
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
