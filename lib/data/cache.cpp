// Data set cache files: a Split (uint8 images, int32 labels, class ids and names) in one binary file.
//
// Layout, every integer a little-endian uint64 unless said otherwise:
//   "DYADDSET"                              8 bytes of magic
//   version                                 kVersion
//   fingerprint length, fingerprint bytes   whatever the writer passed (a description of the source)
//   for train, then val:
//     defined                               1, or 0 for a Dataset without images (all fields then 0)
//     count, height, width, channels        the image shape
//     class id count, then (length, bytes) per id
//     class name count, then (length, bytes) per name
//   train pixels (count*h*w*c bytes), train labels (count int32), val pixels, val labels
//   checksum                                of every byte before it (see Checksum)
// Writes are atomic: a temporary file in the same directory, fsync, rename. Reads check the magic, the
// version and the fingerprint, then every length and count against the file size before anything is
// allocated, then read the pixels and labels with large read() calls straight into the tensors, hashing
// each chunk while it is still in the cache, and compare the checksum before handing anything out.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "dyad/data.h"
#include "lib/io/file.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the data set cache assumes a little-endian host");
#endif

namespace dyad::data {

using io::detail::AtomicFile;
using io::detail::errno_text;
using io::detail::read_all;

namespace {

constexpr char kMagic[8] = {'D', 'Y', 'A', 'D', 'D', 'S', 'E', 'T'};
constexpr uint64_t kVersion = 1;
constexpr size_t kIoChunk = size_t(4) << 20;  // bytes per read()/write() of the data, hashed while hot

// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) made fast for gigabytes: the bytes are
// taken as little-endian 8-byte words in 32-byte blocks, word j of each block going into lane j (four
// independent FNV-1a states over words, started at basis + j); at the end the four lanes are folded
// word-wise into a fresh FNV-1a state, then the tail bytes that did not fill a block (byte-wise), then the
// total length. Any change to a single word changes the result.
class Checksum {
public:
    static constexpr uint64_t kBasis = 0xcbf29ce484222325ull;
    static constexpr uint64_t kPrime = 0x100000001b3ull;

    void update(const void* p, size_t n) {
        if (n == 0) return;
        const unsigned char* c = static_cast<const unsigned char*>(p);
        total_ += n;
        if (fill_ > 0) {
            const size_t take = std::min(n, sizeof carry_ - fill_);
            std::memcpy(carry_ + fill_, c, take);
            fill_ += take, c += take, n -= take;
            if (fill_ < sizeof carry_) return;
            blocks(carry_, 1);
            fill_ = 0;
        }
        const size_t nb = n / 32;
        blocks(c, nb);
        c += nb * 32, n -= nb * 32;
        std::memcpy(carry_, c, n);
        fill_ = n;
    }

    uint64_t value() const {
        uint64_t h = kBasis;
        for (const uint64_t l : lane_) h = (h ^ l) * kPrime;
        for (size_t i = 0; i < fill_; i++) h = (h ^ carry_[i]) * kPrime;
        return (h ^ total_) * kPrime;
    }

private:
    void blocks(const unsigned char* c, size_t nb) {
        uint64_t a = lane_[0], b = lane_[1], d = lane_[2], e = lane_[3];
        for (size_t k = 0; k < nb; k++, c += 32) {
            uint64_t w[4];
            std::memcpy(w, c, 32);
            a = (a ^ w[0]) * kPrime;
            b = (b ^ w[1]) * kPrime;
            d = (d ^ w[2]) * kPrime;
            e = (e ^ w[3]) * kPrime;
        }
        lane_[0] = a, lane_[1] = b, lane_[2] = d, lane_[3] = e;
    }

    uint64_t lane_[4] = {kBasis, kBasis + 1, kBasis + 2, kBasis + 3};
    unsigned char carry_[32] = {};
    size_t fill_ = 0;
    uint64_t total_ = 0;
};

// A string for a message: quoted, cut after 100 characters.
std::string shown(const std::string& s) { return "'" + (s.size() <= 100 ? s : s.substr(0, 100) + "...") + "'"; }

void put_u64(std::string& out, uint64_t v) {
    char b[8];
    std::memcpy(b, &v, 8);
    out.append(b, 8);
}

void put_string(std::string& out, const std::string& s) {
    put_u64(out, s.size());
    out += s;
}

// The host tensors of one Dataset, checked against the Dataset contract.
struct HostSet {
    Tensor images, labels;  // contiguous, on the CPU; undefined for an empty Dataset
    Shape shape = {0, 0, 0, 0};
};

HostSet host_set(const std::string& path, const char* which, const Dataset& d) {
#define DYAD_SET_CHECK(cond, ...) DYAD_CHECK(cond, "write_cache: '", path, "': ", which, ": ", __VA_ARGS__)
    HostSet h;
    DYAD_SET_CHECK(d.images.defined() == d.labels.defined(), "images are ",
                   d.images.defined() ? "defined" : "undefined", " but labels are ",
                   d.labels.defined() ? "defined" : "undefined");
    if (!d.images.defined()) return h;
    DYAD_SET_CHECK(d.images.dtype() == DType::uint8 && d.images.dim() == 4,
                   "images must be uint8 (count, h, w, c), got ", d.images.str());
    DYAD_SET_CHECK(d.labels.dtype() == DType::int32 && d.labels.dim() == 1, "labels must be int32 (count), got ",
                   d.labels.str());
    DYAD_SET_CHECK(d.labels.size(0) == d.images.size(0), d.images.size(0), " images but ", d.labels.size(0), " labels");
    h.images = d.images.to(Device::cpu()).contiguous();
    h.labels = d.labels.to(Device::cpu()).contiguous();
    h.shape = d.images.shape();
    const int32_t* l = h.labels.data<int32_t>();
    const int64_t classes = d.classes();
    for (int64_t i = 0; i < h.labels.numel(); i++) {
        DYAD_SET_CHECK(l[i] >= 0 && l[i] < classes, "label ", l[i], " at index ", i, " is outside [0, ", classes, ")");
    }
    return h;
#undef DYAD_SET_CHECK
}

// Reading: the remaining file bytes before the checksum are known, so every length is checked against them.
class CacheReader {
public:
    CacheReader(int fd, uint64_t size) : fd_(fd), size_(size) {}

    // The problem that stopped reading ("" while all is well).
    const std::string& problem() const { return problem_; }
    uint64_t pos() const { return pos_; }
    uint64_t left() const { return size_ - 8 - pos_; }  // bytes before the checksum
    Checksum& checksum() { return sum_; }

    bool fail(const std::string& why) {
        if (problem_.empty()) problem_ = why;
        return false;
    }

    // Reads n header bytes (counted against the bytes before the checksum) and hashes them.
    bool bytes(void* p, uint64_t n, const char* what) {
        if (!problem_.empty()) return false;
        if (n > left()) {
            return fail("truncated: " + std::string(what) + " at byte " + std::to_string(pos_) + " needs " +
                        std::to_string(n) + " bytes, only " + std::to_string(left()) + " remain before the checksum");
        }
        if (read_all(fd_, p, size_t(n)) != n)
            return fail(std::string("read error in ") + what + ": " + errno_text(errno));
        sum_.update(p, size_t(n));
        pos_ += n;
        return true;
    }

    bool u64(uint64_t* v, const char* what) {
        unsigned char b[8];
        if (!bytes(b, 8, what)) return false;
        std::memcpy(v, b, 8);
        return true;
    }

    bool string(std::string* s, const char* what) {
        uint64_t n = 0;
        if (!u64(&n, what)) return false;
        if (n > left()) {
            return fail("truncated: " + std::string(what) + " at byte " + std::to_string(pos_) + " claims " +
                        std::to_string(n) + " bytes, only " + std::to_string(left()) + " remain before the checksum");
        }
        s->assign(size_t(n), '\0');
        return bytes(s->data(), n, what);
    }

    bool strings(std::vector<std::string>* out, const char* what) {
        uint64_t n = 0;
        if (!u64(&n, what)) return false;
        if (n > left() / 8) {
            return fail("truncated: " + std::to_string(n) + " " + what + " at byte " + std::to_string(pos_) +
                        " cannot fit in the " + std::to_string(left()) + " bytes before the checksum");
        }
        out->assign(size_t(n), std::string());
        for (std::string& s : *out) {
            if (!string(&s, what)) return false;
        }
        return true;
    }

    // Reads n data bytes straight into p, hashing each chunk right after it arrives.
    bool data(void* p, uint64_t n, const char* what) {
        unsigned char* c = static_cast<unsigned char*>(p);
        for (uint64_t done = 0; done < n;) {
            const size_t want = size_t(std::min<uint64_t>(n - done, kIoChunk));
            if (!bytes(c + done, want, what)) return false;
            done += want;
        }
        return true;
    }

private:
    int fd_;
    uint64_t size_;
    uint64_t pos_ = 0;
    Checksum sum_;
    std::string problem_;
};

struct SetHeader {
    uint64_t defined = 0;
    Shape shape = {0, 0, 0, 0};
    std::vector<std::string> ids, names;
    uint64_t pixel_bytes = 0, label_bytes = 0;
};

bool read_set_header(CacheReader& in, const char* which, SetHeader* h) {
    if (!in.u64(&h->defined, "the 'defined' flag")) return false;
    if (h->defined > 1) return in.fail(std::string(which) + ": bad 'defined' flag " + std::to_string(h->defined));
    uint64_t dims[4];
    for (uint64_t& d : dims) {
        if (!in.u64(&d, "the image shape")) return false;
    }
    // The pixels and labels must fit in what is left of the file: bound each factor by it.
    const uint64_t room = in.left();
    const std::string shape = "(" + std::to_string(dims[0]) + ", " + std::to_string(dims[1]) + ", " +
                              std::to_string(dims[2]) + ", " + std::to_string(dims[3]) + ")";
    uint64_t pixels = 1;
    for (const uint64_t d : dims) {
        if (d != 0 && pixels > room / d && pixels != 0) {
            return in.fail("truncated: " + std::string(which) + " image shape " + shape + " cannot fit in the " +
                           std::to_string(room) + " bytes left");
        }
        pixels *= d;
    }
    // With a count of 0 the other sizes hold no data, but a tensor's strides are their products: bound those.
    uint64_t nonzero = 1;
    for (const uint64_t d : dims) {
        if (d != 0 && nonzero > (uint64_t(1) << 62) / d) {
            return in.fail(std::string(which) + ": image shape " + shape + " is too large");
        }
        nonzero *= d != 0 ? d : 1;
    }
    if (dims[0] > room / 4) {
        return in.fail("truncated: " + std::string(which) + " holds " + std::to_string(dims[0]) +
                       " labels, which cannot fit in the " + std::to_string(room) + " bytes left");
    }
    if (h->defined == 0 && (dims[0] | dims[1] | dims[2] | dims[3]) != 0) {
        return in.fail(std::string(which) + ": an undefined data set with a nonzero shape");
    }
    for (int i = 0; i < 4; i++) h->shape[size_t(i)] = int64_t(dims[i]);
    h->pixel_bytes = pixels;
    h->label_bytes = dims[0] * 4;
    return in.strings(&h->ids, "class ids") && in.strings(&h->names, "class names");
}

}  // namespace

// ---------------------------------------------------------------------------- write
void write_cache(const std::string& path, const Split& split, const std::string& fingerprint) {
    const HostSet sets[2] = {host_set(path, "train", split.train), host_set(path, "val", split.val)};
    const Dataset* datasets[2] = {&split.train, &split.val};

    std::string header(kMagic, sizeof kMagic);
    put_u64(header, kVersion);
    put_string(header, fingerprint);
    for (int s = 0; s < 2; s++) {
        put_u64(header, sets[s].images.defined() ? 1 : 0);
        for (const int64_t d : sets[s].shape) put_u64(header, uint64_t(d));
        put_u64(header, datasets[s]->class_ids.size());
        for (const std::string& id : datasets[s]->class_ids) put_string(header, id);
        put_u64(header, datasets[s]->class_names.size());
        for (const std::string& name : datasets[s]->class_names) put_string(header, name);
    }

    AtomicFile file("write_cache", path);
    Checksum sum;
    auto put = [&](const void* p, size_t n) {
        const char* c = static_cast<const char*>(p);
        for (size_t done = 0; done < n;) {
            const size_t len = std::min(n - done, kIoChunk);
            sum.update(c + done, len);
            file.write(c + done, len);
            done += len;
        }
    };
    put(header.data(), header.size());
    for (const HostSet& h : sets) {
        if (!h.images.defined()) continue;
        put(h.images.raw_data(), size_t(h.images.numel()));
        put(h.labels.raw_data(), size_t(h.labels.numel()) * 4);
    }
    const uint64_t value = sum.value();
    file.write(&value, 8);
    file.commit();
}

// ---------------------------------------------------------------------------- read
bool read_cache(const std::string& path, const std::string& fingerprint, Split* split, std::string* why) {
    DYAD_CHECK(split != nullptr, "read_cache: '", path, "': split is null");
    auto no = [&](const std::string& reason) {
        if (why != nullptr) *why = "cache '" + path + "': " + reason;
        return false;
    };
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        return no(err == ENOENT ? "missing (no such file)" : "cannot open: " + errno_text(err));
    }
    const io::detail::Fd closer(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return no("cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) return no("not a regular file");
    const uint64_t size = uint64_t(st.st_size);
    if (size == 0) return no("truncated: the file is empty");
    if (size < sizeof kMagic + 16) {
        return no("truncated: the file is " + std::to_string(size) + " bytes, shorter than the " +
                  std::to_string(sizeof kMagic + 16) + " bytes of magic, version and checksum");
    }
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

    try {
        CacheReader in(fd, size);
        char magic[sizeof kMagic];
        uint64_t version = 0;
        if (!in.bytes(magic, sizeof magic, "the magic")) return no(in.problem());
        if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) return no("not a dyad data set cache (bad magic)");
        if (!in.u64(&version, "the version")) return no(in.problem());
        if (version != kVersion) {
            return no("format version " + std::to_string(version) + ", this build reads version " +
                      std::to_string(kVersion));
        }
        std::string stored;
        if (!in.string(&stored, "the fingerprint")) return no(in.problem());
        if (stored != fingerprint) {
            return no("made from another source: fingerprint " + shown(stored) + ", expected " + shown(fingerprint));
        }
        SetHeader heads[2];
        if (!read_set_header(in, "train", &heads[0]) || !read_set_header(in, "val", &heads[1])) {
            return no(in.problem());
        }
        // The header and the data must tile the file exactly.
        uint64_t need = 0;  // saturates: each part is at most left(), their sum may not fit
        for (const SetHeader& h : heads) {
            for (const uint64_t part : {h.pixel_bytes, h.label_bytes}) need = part > ~need ? ~uint64_t(0) : need + part;
        }
        if (need > in.left()) {
            return no("truncated: the shapes need " + (need == ~uint64_t(0) ? "more than 2^64" : std::to_string(need)) +
                      " bytes of pixels and labels after byte " + std::to_string(in.pos()) + ", only " +
                      std::to_string(in.left()) + " remain before the checksum");
        }
        if (need < in.left()) {
            return no(std::to_string(in.left() - need) + " unexpected bytes after the pixels and labels");
        }

        Dataset sets[2];
        for (int s = 0; s < 2; s++) {
            const SetHeader& h = heads[s];
            Dataset& d = sets[s];
            d.class_ids = h.ids;
            d.class_names = h.names;
            if (h.defined == 0) continue;
            d.images = Tensor::empty(h.shape, DType::uint8);
            d.labels = Tensor::empty({h.shape[0]}, DType::int32);
            if (!in.data(d.images.raw_data(), h.pixel_bytes, "the pixels") ||
                !in.data(d.labels.raw_data(), h.label_bytes, "the labels")) {
                return no(in.problem());
            }
        }
        uint64_t stored_sum = 0;
        if (read_all(fd, &stored_sum, 8) != 8) return no("read error in the checksum: " + errno_text(errno));
        if (stored_sum != in.checksum().value()) return no("checksum mismatch: the file is damaged");
        for (int s = 0; s < 2; s++) {
            if (!sets[s].labels.defined()) continue;
            const int32_t* l = sets[s].labels.data<int32_t>();
            const int64_t n = sets[s].labels.numel(), classes = sets[s].classes();
            for (int64_t i = 0; i < n; i++) {
                if (l[i] < 0 || l[i] >= classes) {
                    return no(std::string(s == 0 ? "train" : "val") + " label " + std::to_string(l[i]) + " at index " +
                              std::to_string(i) + " is outside [0, " + std::to_string(classes) + ")");
                }
            }
        }
        split->train = std::move(sets[0]);
        split->val = std::move(sets[1]);
        if (why != nullptr) why->clear();
        return true;
    } catch (const std::exception& e) {  // e.g. no memory for a cache that is otherwise fine
        return no(std::string("cannot load: ") + e.what());
    }
}

}  // namespace dyad::data
