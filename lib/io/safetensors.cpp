// safetensors files: an 8-byte little-endian header length N, N bytes of JSON (padded with spaces to a
// multiple of 8), then the tensors' bytes back to back. Writes are atomic (temporary file, fsync,
// rename); reads validate the whole header against the file size before any tensor is allocated, then
// read the data in one sequential pass straight into the tensors.
//
// The JSON is nlohmann/json's. Its reader is driven through a SAX handler (HeaderParser) that refuses what
// its own DOM parser would accept silently: a repeated key (it keeps one), an integer beyond int64 (it
// becomes a double, or an unsigned up to 2^64 - 1) and nesting without bound.
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

#include <nlohmann/json.hpp>

#include "dyad/autograd.h"
#include "dyad/io.h"
#include "lib/io/file.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");
#endif

namespace dyad::io {

using detail::AtomicFile;
using detail::errno_text;
using detail::Fd;
using detail::read_all;

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr uint64_t kMaxHeader = 100ull * 1000 * 1000;  // 100 MB, as the reference implementation

// `s` as a JSON string literal (quotes and escapes); empty when `s` is not valid UTF-8, which JSON text
// cannot hold.
std::string json_string(const std::string& s) {
    try {
        return Json(s).dump();
    } catch (const Json::type_error&) {
        return {};
    }
}

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
        case DType::bfloat16:
            return "BF16";
    }
    return "?";
}

}  // namespace

// ---------------------------------------------------------------------------- save
void save_tensors(const std::string& path, const nn::NamedTensors& tensors, const Metadata& metadata) {
    // Everything that can be checked is checked before a file is created.
    std::set<std::string> names;
    std::vector<std::string> quoted;  // the names as JSON strings
    quoted.reserve(tensors.size());
    for (const auto& [name, t] : tensors) {
        DYAD_CHECK(!name.empty(), "save_tensors: '", path, "': empty tensor name");
        DYAD_CHECK(name != "__metadata__", "save_tensors: '", path, "': '__metadata__' is reserved");
        DYAD_CHECK(names.insert(name).second, "save_tensors: '", path, "': duplicate tensor name '", name, "'");
        DYAD_CHECK(t.defined(), "save_tensors: '", path, "': tensor '", name, "' is undefined");
        quoted.push_back(json_string(name));
        DYAD_CHECK(!quoted.back().empty(), "save_tensors: '", path, "': tensor name '", name, "' is not valid UTF-8");
    }
    for (const auto& [k, v] : metadata) {
        DYAD_CHECK(!json_string(k).empty(), "save_tensors: '", path, "': metadata key '", k, "' is not valid UTF-8");
        DYAD_CHECK(!json_string(v).empty(), "save_tensors: '", path, "': metadata '", k, "' is not valid UTF-8");
    }

    // Host copies, contiguous, in the given order.
    std::vector<Tensor> host;
    host.reserve(tensors.size());
    {
        NoGradGuard ng;
        for (const auto& entry : tensors) host.push_back(entry.second.detach().to(Device::cpu()).contiguous());
    }

    // "__metadata__" first, then each tensor as {"dtype", "shape", "data_offsets"} in the given order. The
    // top-level members are joined here: the names are known to be unique, and an ordered JSON object would
    // compare each new name with all the earlier ones.
    std::string header = "{";
    if (!metadata.empty()) header += "\"__metadata__\":" + Json(metadata).dump();
    uint64_t offset = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
        const Tensor& t = host[i];
        const uint64_t nbytes = uint64_t(t.numel()) * dtype_size(t.dtype());
        OrderedJson entry = OrderedJson::object();
        entry["dtype"] = st_dtype(t.dtype());
        entry["shape"] = t.shape();
        entry["data_offsets"] = OrderedJson::array({offset, offset + nbytes});
        header += (header.size() > 1 ? "," : "") + quoted[i] + ":" + entry.dump();
        offset += nbytes;
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

// Nesting deeper than this is refused: a safetensors header needs 3 levels, and the bound keeps the work on
// hostile input small.
constexpr size_t kMaxDepth = 64;

// "an object", "an integer", "a floating-point number (2.5)", ... for messages.
std::string kind(const Json& v) {
    if (v.is_object()) return "an object";
    if (v.is_array()) return "an array";
    if (v.is_number_integer()) return "an integer";
    if (v.is_number_float()) return "a floating-point number (" + v.dump() + ")";
    if (v.is_null()) return "null";
    return std::string("a ") + v.type_name();  // string, boolean
}

// The header's JSON: nlohmann/json's reader builds the document, as its own DOM parser would, through
// this handler, which also lists the root object's members in file order. Besides every syntax error it
// refuses, with a message (problem()), what that DOM parser accepts silently:
// - a key repeated in an object (the DOM parser keeps one of the values);
// - an integer outside int64 (the DOM parser makes it a double, or an unsigned up to 2^64 - 1). Integers
//   are stored as int64; numbers with a fraction or an exponent as doubles, refused later where an
//   integer is required;
// - nesting deeper than kMaxDepth;
// - a byte order mark or a NUL byte (the reader skips the first and stops at the second).
class HeaderParser : public nlohmann::json_sax<Json> {
public:
    // False on the first defect.
    bool parse(const std::string& text) {
        // nlohmann's reader skips a UTF-8 byte order mark, and takes a NUL byte for the end of the input
        // (ignoring what follows it); JSON text has neither.
        if (text.rfind("\xef\xbb\xbf", 0) == 0)
            return fail("invalid JSON header: a UTF-8 byte order mark at header byte 0");
        const size_t nul = text.find('\0');
        if (nul != std::string::npos)
            return fail(dyad::detail::str("invalid JSON header: a NUL byte at header byte ", nul, " (file offset ",
                                          nul + 8, ")"));
        return Json::sax_parse(text, this);
    }

    const Json& root() const { return root_; }
    const std::vector<const Json::object_t::value_type*>& members() const { return members_; }
    const std::string& problem() const { return problem_; }

    bool null() override { return add(nullptr); }
    bool boolean(bool v) override { return add(v); }
    bool number_integer(number_integer_t v) override { return add(v); }
    bool number_unsigned(number_unsigned_t v) override {
        if (v > uint64_t(std::numeric_limits<int64_t>::max())) return out_of_range(std::to_string(v));
        return add(number_integer_t(v));
    }
    bool number_float(number_float_t v, const string_t& text) override {
        // An integer literal comes here only when it does not fit 64 bits.
        if (text.find_first_of(".eE") == std::string::npos) return out_of_range(text);
        return add(v);
    }
    bool string(string_t& v) override { return add(std::move(v)); }
    bool binary(binary_t&) override { return fail("invalid JSON header: binary value"); }  // not in JSON text
    bool start_object(std::size_t) override { return open(Json::object()); }
    bool key(string_t& k) override {
        auto [it, inserted] = stack_.back()->get_ref<Json::object_t&>().try_emplace(std::move(k));
        if (!inserted) return duplicate(k);  // try_emplace leaves `k` as it was when it inserts nothing
        if (stack_.size() == 1) members_.push_back(&*it);
        slot_ = &it->second;
        return true;
    }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(Json::array()); }
    bool end_array() override { return close(); }
    bool parse_error(std::size_t position, const std::string& token, const nlohmann::json::exception& e) override {
        // nlohmann's message without its prefix ("[json.exception.parse_error.101] parse error at line 1,
        // column 21: "), and a long token cut to its end, where the error is.
        std::string what = e.what();
        if (what.rfind("[json.exception.", 0) == 0 && what.find("] ") != std::string::npos)
            what.erase(0, what.find("] ") + 2);
        if (what.rfind("parse error", 0) == 0 && what.find(": ") != std::string::npos)
            what.erase(0, what.find(": ") + 2);
        const size_t at = token.size() > 64 ? what.find(token) : std::string::npos;
        if (at != std::string::npos) what.replace(at, token.size(), "..." + token.substr(token.size() - 32));
        // `position` counts the bytes read, the offending one included.
        const size_t byte = position > 0 ? position - 1 : 0;
        return fail(dyad::detail::str("invalid JSON header: ", what, " at header byte ", byte, " (file offset ",
                                      byte + 8, ")"));
    }

private:
    bool fail(std::string problem) {
        problem_ = std::move(problem);
        return false;
    }
    // The top-level member a value belongs to: "tensor 'w'", "'__metadata__'", or "" outside any member.
    std::string owner() const {
        if (stack_.empty() || !stack_.front()->is_object() || members_.empty()) return "";
        const std::string& name = members_.back()->first;
        return name == "__metadata__" ? "'__metadata__'" : "tensor '" + name + "'";
    }
    bool out_of_range(const std::string& text) {
        const std::string o = owner();
        return fail("invalid JSON header: integer " + text + " is out of the 64-bit range" +
                    (o.empty() ? "" : " (" + o + ")"));
    }
    bool duplicate(const std::string& k) {
        if (stack_.size() == 1)
            return fail(k == "__metadata__" ? "duplicate '__metadata__'" : "tensor '" + k + "': duplicate tensor name");
        if (stack_.size() == 2 && members_.back()->first == "__metadata__")
            return fail("duplicate metadata key '" + k + "'");
        return fail(owner() + ": duplicate key '" + k + "'");
    }
    // Puts `v` where the next value goes: the root, the member whose key came last, or the end of the open
    // array.
    Json* place(Json&& v) {
        if (stack_.empty()) {
            root_ = std::move(v);
            return &root_;
        }
        if (stack_.back()->is_array()) {
            Json::array_t& array = stack_.back()->get_ref<Json::array_t&>();
            array.push_back(std::move(v));
            return &array.back();
        }
        *slot_ = std::move(v);
        return slot_;
    }
    bool add(Json&& v) {
        place(std::move(v));
        return true;
    }
    bool open(Json&& container) {
        if (stack_.size() >= kMaxDepth) {
            const std::string o = owner();
            return fail("invalid JSON header: nesting deeper than " + std::to_string(kMaxDepth) + " levels" +
                        (o.empty() ? "" : " (" + o + ")"));
        }
        stack_.push_back(place(std::move(container)));
        return true;
    }
    bool close() {
        stack_.pop_back();
        return true;
    }

    Json root_;
    std::vector<Json*> stack_;  // the open objects and arrays, outermost first
    Json* slot_ = nullptr;      // the value of the key read last
    std::vector<const Json::object_t::value_type*> members_;
    std::string problem_;
};

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

    Metadata meta;
    std::vector<Entry> entries;
    {  // the parsed document is freed before the tensors are allocated
        HeaderParser parser;
        DYAD_FILE_CHECK(parser.parse(header), parser.problem());
        DYAD_FILE_CHECK(parser.root().is_object(), "the header is ", kind(parser.root()), ", not an object");
        for (const auto* member : parser.members()) {
            const std::string& name = member->first;
            const Json& v = member->second;
            if (name == "__metadata__") {
                DYAD_FILE_CHECK(v.is_object(), "'__metadata__' is ", kind(v), ", not an object");
                for (const auto& [k, s] : v.get_ref<const Json::object_t&>()) {
                    DYAD_FILE_CHECK(s.is_string(), "metadata '", k, "' is ", kind(s), ", not a string");
                    meta.emplace(k, s.get_ref<const std::string&>());
                }
                continue;
            }
#define DYAD_TENSOR_CHECK(cond, ...) DYAD_FILE_CHECK(cond, "tensor '", name, "': ", __VA_ARGS__)
            DYAD_TENSOR_CHECK(!name.empty(), "empty tensor name");
            DYAD_TENSOR_CHECK(v.is_object(), "the entry is ", kind(v), ", not an object");
            const Json::object_t& fields = v.get_ref<const Json::object_t&>();
            for (const auto& field : fields) {
                const std::string& k = field.first;
                DYAD_TENSOR_CHECK(k == "dtype" || k == "shape" || k == "data_offsets", "unexpected key '", k, "'");
            }
            const auto dtype = fields.find("dtype"), shape = fields.find("shape"),
                       offsets = fields.find("data_offsets");
            DYAD_TENSOR_CHECK(dtype != fields.end() && shape != fields.end() && offsets != fields.end(), "missing ",
                              dtype == fields.end()   ? "'dtype'"
                              : shape == fields.end() ? "'shape'"
                                                      : "'data_offsets'");
            Entry e;
            e.name = name;
            DYAD_TENSOR_CHECK(dtype->second.is_string(), "'dtype' is ", kind(dtype->second), ", not a string");
            e.dtype = dtype->second.get_ref<const std::string&>();
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
            } else if (e.dtype == "BF16") {
                e.dt = DType::bfloat16, e.elem = 2;
            } else {
                DYAD_TENSOR_CHECK(false, "unsupported dtype '", e.dtype,
                                  "' (dyad reads F32, F64, I32, U8, I64 and BF16)");
            }
            // Integers are int64 here (the parser refused larger ones).
            DYAD_TENSOR_CHECK(shape->second.is_array(), "'shape' is ", kind(shape->second), ", not an array");
            for (const Json& d : shape->second.get_ref<const Json::array_t&>()) {
                DYAD_TENSOR_CHECK(d.is_number_integer(), "shape entries must be integers, found ", kind(d));
                const int64_t n = d.get<int64_t>();
                DYAD_TENSOR_CHECK(n >= 0, "negative dimension ", n, " in the shape");
                e.shape.push_back(n);
            }
            // The sizes after a 0 are checked too: a tensor's strides are products of them.
            uint64_t bytes = e.elem, nonzero = e.elem;
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
            const Json& range = offsets->second;
            DYAD_TENSOR_CHECK(range.is_array() && range.size() == 2, "'data_offsets' must be an array of two integers");
            for (const Json& o : range) {
                DYAD_TENSOR_CHECK(o.is_number_integer(), "'data_offsets' must be an array of two integers, found ",
                                  kind(o));
                DYAD_TENSOR_CHECK(o.get<int64_t>() >= 0, "negative data offset ", o.get<int64_t>());
            }
            e.begin = uint64_t(range[0].get<int64_t>());
            e.end = uint64_t(range[1].get<int64_t>());
            DYAD_TENSOR_CHECK(e.begin <= e.end, "data_offsets [", e.begin, ", ", e.end,
                              "] are out of order (end before begin)");
            DYAD_TENSOR_CHECK(e.end - e.begin == bytes, "data_offsets [", e.begin, ", ", e.end, "] hold ",
                              e.end - e.begin, " bytes but shape ", shape_str(e.shape), " of ", e.dtype, " needs ",
                              bytes);
            DYAD_TENSOR_CHECK(e.end <= data_size, "data_offsets [", e.begin, ", ", e.end,
                              "] run past the end of the file (", data_size, " data bytes)");
            entries.push_back(std::move(e));
#undef DYAD_TENSOR_CHECK
        }
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
