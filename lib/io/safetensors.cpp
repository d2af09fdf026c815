// safetensors files: an 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a
// multiple of 8), then the tensors' bytes back to back. Writes are atomic (temporary file, fsync,
// rename); reads validate the whole header against the file size before any tensor is allocated, then
// read the data in one sequential pass straight into the tensors.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>

#include "dyad/autograd.h"
#include "dyad/io.h"
#include "lib/io/file.h"
#include "lib/io/json.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");
#endif

namespace dyad::io {

using detail::AtomicFile;
using detail::errno_text;
using detail::read_all;

namespace {

constexpr uint64_t kMaxHeader = 100ull * 1000 * 1000;  // 100 MB, as the reference implementation

const char* st_dtype(DType t) {
    switch (t) {
        case DType::float32:
            return "F32";
        case DType::float64:
            return "F64";
        case DType::int32:
            return "I32";
        case DType::int64:
            return "I64";
        case DType::uint8:
            return "U8";
    }
    return "?";
}

// Closes the descriptor on scope exit (the reading side).
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

}  // namespace

// ---------------------------------------------------------------------------- save
void save_tensors(const std::string& path, const nn::NamedTensors& tensors, const Metadata& metadata) {
    // Everything that can be checked is checked before a file is created.
    std::set<std::string> names;
    for (const auto& [name, t] : tensors) {
        DYAD_CHECK(!name.empty(), "save_tensors: '", path, "': empty tensor name");
        DYAD_CHECK(name != "__metadata__", "save_tensors: '", path, "': '__metadata__' is reserved");
        DYAD_CHECK(names.insert(name).second, "save_tensors: '", path, "': duplicate tensor name '", name, "'");
        DYAD_CHECK(t.defined(), "save_tensors: '", path, "': tensor '", name, "' is undefined");
    }

    // Host copies, contiguous, in the given order.
    std::vector<Tensor> host;
    host.reserve(tensors.size());
    {
        NoGradGuard ng;
        for (const auto& entry : tensors) host.push_back(entry.second.detach().to(Device::cpu()).contiguous());
    }

    std::string header = "{";
    bool first = true;
    if (!metadata.empty()) {
        header += json::quote("__metadata__") + ":{";
        bool first_meta = true;
        for (const auto& [k, v] : metadata) {
            header += (first_meta ? "" : ",") + json::quote(k) + ":" + json::quote(v);
            first_meta = false;
        }
        header += "}";
        first = false;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const Tensor& t = host[i];
        const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
        header += (first ? "" : ",") + json::quote(tensors[i].first) + ":{\"dtype\":\"" + st_dtype(t.dtype()) +
                  "\",\"shape\":[";
        for (size_t d = 0; d < t.shape().size(); d++) header += (d ? "," : "") + std::to_string(t.shape()[d]);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
        offset += nbytes;
        first = false;
    }
    header += "}";
    // Pad with spaces so that the data starts at a multiple of 8 bytes.
    header.append((8 - header.size() % 8) % 8, ' ');
    DYAD_CHECK(header.size() <= kMaxHeader, "save_tensors: '", path, "': the header (", header.size(),
               " bytes) exceeds the 100 MB limit");

    AtomicFile file("save_tensors", path);
    unsigned char len_bytes[8];
    const uint64_t n = header.size();
    for (int i = 0; i < 8; i++) len_bytes[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xff);
    file.write(len_bytes, 8);
    file.write(header.data(), header.size());
    for (const Tensor& t : host) file.write(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype()));
    file.commit();
}

// ---------------------------------------------------------------------------- load
namespace {

struct Entry {
    std::string name;
    std::string dtype;
    DType dt = DType::float32;  // the dtype of the loaded tensor
    size_t elem = 4;            // bytes per element
    Shape shape;
    uint64_t begin = 0, end = 0;
};

}  // namespace

nn::NamedTensors load_tensors(const std::string& path, Metadata* metadata) {
#define DYAD_FILE_CHECK(cond, ...) DYAD_CHECK(cond, "load_tensors: '", path, "': ", __VA_ARGS__)
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        const int err = errno;
        DYAD_FILE_CHECK(false, "cannot open: ", errno_text(err));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        const int err = errno;
        DYAD_FILE_CHECK(false, "cannot stat: ", errno_text(err));
    }
    DYAD_FILE_CHECK(S_ISREG(st.st_mode), "not a regular file");
    const uint64_t file_size = uint64_t(st.st_size);
    DYAD_FILE_CHECK(file_size >= 8, "the file is ", file_size,
                    " bytes, shorter than the 8-byte header length: not a safetensors file");

    unsigned char len_bytes[8];
    DYAD_FILE_CHECK(read_all(fd.get(), len_bytes, 8) == 8, "read error: ", errno_text(errno));
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | len_bytes[i];
    DYAD_FILE_CHECK(header_len <= kMaxHeader, "header length ", header_len, " exceeds the 100 MB limit");
    DYAD_FILE_CHECK(header_len <= file_size - 8, "header length ", header_len, " exceeds the file size (", file_size,
                    " bytes, ", file_size - 8, " after the length field)");
    std::string header(size_t(header_len), '\0');
    DYAD_FILE_CHECK(read_all(fd.get(), header.data(), header.size()) == header.size(),
                    "read error in the header: ", errno_text(errno));
    const uint64_t data_size = file_size - 8 - header_len;

    json::Value root;
    try {
        root = json::parse(header);
    } catch (const json::ParseError& e) {
        DYAD_FILE_CHECK(false, "invalid JSON header: ", e.problem, " at header byte ", e.offset, " (file offset ",
                        e.offset + 8, ")");
    }
    DYAD_FILE_CHECK(root.is_object(), "the header is a JSON ", json::type_name(root.type), ", not an object");

    Metadata meta;
    std::vector<Entry> entries;
    std::set<std::string> seen;
    bool seen_meta = false;
    for (const auto& [name, v] : root.object) {
        if (name == "__metadata__") {
            DYAD_FILE_CHECK(!seen_meta, "duplicate '__metadata__'");
            seen_meta = true;
            DYAD_FILE_CHECK(v.is_object(), "'__metadata__' is a ", json::type_name(v.type), ", not an object");
            for (const auto& [k, s] : v.object) {
                DYAD_FILE_CHECK(s.is_string(), "metadata '", k, "' is a ", json::type_name(s.type), ", not a string");
                DYAD_FILE_CHECK(meta.emplace(k, s.string).second, "duplicate metadata key '", k, "'");
            }
            continue;
        }
#define DYAD_TENSOR_CHECK(cond, ...) DYAD_FILE_CHECK(cond, "tensor '", name, "': ", __VA_ARGS__)
        DYAD_TENSOR_CHECK(!name.empty(), "empty tensor name");
        DYAD_TENSOR_CHECK(seen.insert(name).second, "duplicate tensor name");
        DYAD_TENSOR_CHECK(v.is_object(), "the entry is a ", json::type_name(v.type), ", not an object");
        Entry e;
        e.name = name;
        const json::Value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
        for (const auto& [k, field] : v.object) {
            const json::Value** slot = k == "dtype"          ? &dtype
                                       : k == "shape"        ? &shape
                                       : k == "data_offsets" ? &offsets
                                                             : nullptr;
            DYAD_TENSOR_CHECK(slot != nullptr, "unexpected key '", k, "'");
            DYAD_TENSOR_CHECK(*slot == nullptr, "duplicate key '", k, "'");
            *slot = &field;
        }
        DYAD_TENSOR_CHECK(dtype && shape && offsets, "missing ",
                          !dtype   ? "'dtype'"
                          : !shape ? "'shape'"
                                   : "'data_offsets'");
        DYAD_TENSOR_CHECK(dtype->is_string(), "'dtype' is a ", json::type_name(dtype->type), ", not a string");
        e.dtype = dtype->string;
        if (e.dtype == "F32") {
            e.dt = DType::float32, e.elem = 4;
        } else if (e.dtype == "F64") {
            e.dt = DType::float64, e.elem = 8;
        } else if (e.dtype == "I32") {
            e.dt = DType::int32, e.elem = 4;
        } else if (e.dtype == "U8") {
            e.dt = DType::uint8, e.elem = 1;
        } else if (e.dtype == "I64") {
            e.dt = DType::int64, e.elem = 8;
        } else {
            DYAD_TENSOR_CHECK(false, "unsupported dtype '", e.dtype, "' (dyad reads F32, F64, I32, U8 and I64)");
        }
        DYAD_TENSOR_CHECK(shape->is_array(), "'shape' is a ", json::type_name(shape->type), ", not an array");
        uint64_t bytes = e.elem;
        for (const json::Value& d : shape->array) {
            DYAD_TENSOR_CHECK(d.is_integer(), "shape entries must be integers, found a ", json::type_name(d.type));
            DYAD_TENSOR_CHECK(d.integer >= 0, "negative dimension ", d.integer, " in the shape");
            e.shape.push_back(d.integer);
        }
        // The sizes after a 0 are checked too: a tensor's strides are products of them.
        uint64_t nonzero = e.elem;
        for (const int64_t d : e.shape) {
            if (d == 0) {
                bytes = 0;
                continue;
            }
            DYAD_TENSOR_CHECK(nonzero <= uint64_t(std::numeric_limits<int64_t>::max()) / uint64_t(d), "shape ",
                              shape_str(e.shape), " overflows 64 bits");
            nonzero *= uint64_t(d);
            bytes *= uint64_t(d);
        }
        DYAD_TENSOR_CHECK(offsets->is_array() && offsets->array.size() == 2,
                          "'data_offsets' must be an array of two integers");
        for (const json::Value& o : offsets->array) {
            DYAD_TENSOR_CHECK(o.is_integer(), "'data_offsets' must be an array of two integers, found a ",
                              json::type_name(o.type));
            DYAD_TENSOR_CHECK(o.integer >= 0, "negative data offset ", o.integer);
        }
        e.begin = uint64_t(offsets->array[0].integer);
        e.end = uint64_t(offsets->array[1].integer);
        DYAD_TENSOR_CHECK(e.begin <= e.end, "data_offsets [", e.begin, ", ", e.end,
                          "] are out of order (end before begin)");
        DYAD_TENSOR_CHECK(e.end - e.begin == bytes, "data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
                          " bytes but shape ", shape_str(e.shape), " of ", e.dtype, " needs ", bytes);
        DYAD_TENSOR_CHECK(e.end <= data_size, "data_offsets [", e.begin, ", ", e.end,
                          "] run past the end of the file (", data_size, " data bytes)");
        entries.push_back(std::move(e));
#undef DYAD_TENSOR_CHECK
    }

    // The byte ranges, taken in offset order (as the reference implementation checks them), must tile
    // the data exactly: no gap, no overlap, nothing after the last one.
    std::vector<size_t> order(entries.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return entries[a].begin != entries[b].begin ? entries[a].begin < entries[b].begin
                                                    : entries[a].end < entries[b].end;
    });
    uint64_t expect = 0;
    const Entry* prev = nullptr;
    for (const size_t i : order) {
        const Entry& e = entries[i];
        if (e.begin < expect) {
            DYAD_FILE_CHECK(false, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] overlap tensor '",
                            prev->name, "' [", prev->begin, ", ", prev->end, "]");
        }
        if (e.begin > expect) {
            DYAD_FILE_CHECK(false, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] leave a gap of ",
                            e.begin - expect, " bytes after ",
                            prev ? "tensor '" + prev->name + "'" : std::string("the header"));
        }
        expect = e.end;
        prev = &e;
    }
    DYAD_FILE_CHECK(expect == data_size, data_size - expect,
                    " trailing bytes after the last tensor (the tensors cover ", expect, " of ", data_size,
                    " data bytes)");

    // One sequential pass over the data, straight into the tensors.
    std::vector<Tensor> loaded(entries.size());
    for (const size_t i : order) {
        const Entry& e = entries[i];
        const size_t nbytes = size_t(e.end - e.begin);
        Tensor t = Tensor::empty(e.shape, e.dt);
        DYAD_FILE_CHECK(read_all(fd.get(), t.raw_data(), nbytes) == nbytes, "tensor '", e.name,
                        "': the file ended early (it changed while being read?)");
        loaded[i] = t;
    }

    nn::NamedTensors out;
    out.reserve(entries.size());
    for (size_t i = 0; i < entries.size(); i++) out.emplace_back(entries[i].name, loaded[i]);
    if (metadata) *metadata = std::move(meta);
    return out;
#undef DYAD_FILE_CHECK
}

}  // namespace dyad::io
