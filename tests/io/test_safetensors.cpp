// safetensors files: round trips of every dtype and the metadata, the exact byte layout (JSON header
// padded to 8, contiguous offsets), files written by hand and by Python, every kind of corruption (each
// error names the file and the problem), and the atomic write. Also what the header's JSON reader refuses
// although nlohmann/json's own parser accepts it: repeated keys, integers beyond int64, deep nesting.
#include "support/catch.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dyad/dyad.h"
#include "support/files.h"

using namespace dyad;
using Catch::Contains;
namespace fs = std::filesystem;
using test::read_bytes;
using test::write_bytes;

namespace {

std::string out_path(const std::string& name) { return test::output_path("io_safetensors", name); }

std::string le64(uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; i++) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
    return s;
}

// A file made of the length field, `header` as given, and `data`.
std::string hand_file(const std::string& name, const std::string& header, const std::string& data) {
    const std::string path = out_path(name);
    write_bytes(path, le64(header.size()) + header + data);
    return path;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Same dtype, shape and bytes.
void require_identical(const Tensor& a, const Tensor& b) {
    REQUIRE(a.dtype() == b.dtype());
    REQUIRE(a.shape() == b.shape());
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    const size_t n = size_t(a.numel()) * dtype_size(a.dtype());
    REQUIRE(std::memcmp(ac.raw_data(), bc.raw_data(), n) == 0);
}

// Loading `path` throws an error naming the file and containing each of `parts`.
void require_load_error(const std::string& path, const std::vector<std::string>& parts) {
    try {
        (void)io::load_tensors(path);
        FAIL("no exception for " << path);
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(path));
        for (const std::string& p : parts) CHECK_THAT(msg, Contains(p));
    }
}

// Temporary files left next to `path` (they are named "<path>.tmp.<pid>.<n>"). Only this path's own:
// tests in other processes may be writing other files in the same directory.
std::vector<std::string> temp_files_of(const std::string& path) {
    std::vector<std::string> out;
    const std::string prefix = fs::path(path).filename().string() + ".tmp.";
    const fs::path dir = fs::path(path).parent_path();
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().string());
    return out;
}

}  // namespace

// ---------------------------------------------------------------------------- round trips
TEST_CASE("safetensors round trip of every dtype, empty tensors and scalars", "[io]") {
    manual_seed(3);
    const Tensor f32 = Tensor::randn({2, 3});
    const Tensor f64 = Tensor::randn({4}, DType::float64);
    const Tensor i32 = Tensor::from_vector(std::vector<int32_t>{-7, 0, 2147483647, -2147483647 - 1}, {2, 2});
    const Tensor u8 = Tensor::from_vector(std::vector<uint8_t>{0, 1, 128, 255, 7}, {5});
    const Tensor scalar = Tensor::full({}, 3.5);
    const Tensor int_scalar = Tensor::zeros({}, DType::int32);
    const Tensor empty = Tensor::zeros({0}, DType::float32);
    const Tensor empty2 = Tensor::zeros({3, 0, 2}, DType::uint8);
    const Tensor transposed = Tensor::randn({3, 4}).t();  // not contiguous: written row-major
    const Tensor with_grad = Tensor::randn({2}).requires_grad_();
    const nn::NamedTensors in = {{"f32", f32},
                                 {"z.f64", f64},
                                 {"i32", i32},
                                 {"u8", u8},
                                 {"scalar", scalar},
                                 {"int_scalar", int_scalar},
                                 {"empty", empty},
                                 {"empty2", empty2},
                                 {"transposed", transposed},
                                 {"with_grad", with_grad}};
    const std::string path = out_path("all_dtypes.safetensors");
    io::save_tensors(path, in);
    const nn::NamedTensors out = io::load_tensors(path);
    REQUIRE(out.size() == in.size());
    for (size_t i = 0; i < in.size(); i++) {
        INFO(in[i].first);
        REQUIRE(out[i].first == in[i].first);  // the given order
        require_identical(out[i].second, in[i].second.detach());
        REQUIRE(out[i].second.device() == Device::cpu());
        REQUIRE_FALSE(out[i].second.requires_grad());
    }
}

TEST_CASE("safetensors metadata round trip, with characters that need escaping", "[io]") {
    const io::Metadata meta = {{"epoch", "12"},
                               {"quote\"and\\backslash", "line\nbreak\ttab"},
                               {"unicode", "caf\xc3\xa9 \xf0\x9f\x99\x82"},
                               {"control", std::string("a\x01z")},
                               {"", "empty key"}};
    const std::string path = out_path("meta.safetensors");
    io::save_tensors(path, {{"x", Tensor::ones({2})}}, meta);
    io::Metadata back;
    const nn::NamedTensors t = io::load_tensors(path, &back);
    REQUIRE(back == meta);
    REQUIRE(t.size() == 1);

    // No tensors at all, metadata only; and no metadata at all.
    io::save_tensors(path, {}, {{"k", "v"}});
    REQUIRE(io::load_tensors(path, &back).empty());
    REQUIRE(back == io::Metadata{{"k", "v"}});
    io::save_tensors(path, {{"x", Tensor::ones({1})}});
    (void)io::load_tensors(path, &back);
    REQUIRE(back.empty());
}

TEST_CASE("safetensors header is JSON padded with spaces to 8 bytes, offsets contiguous in order", "[io]") {
    const std::string path = out_path("layout.safetensors");
    for (int64_t n = 1; n <= 9; n++) {  // header lengths with every remainder mod 8
        const std::string name(size_t(n), 'a');
        io::save_tensors(path,
                         {{name, Tensor::ones({n})},
                          {"b", Tensor::zeros({2, 2}, DType::float64)},
                          {"c", Tensor::zeros({3}, DType::uint8)}},
                         {{"m", "v"}});
        const std::string bytes = read_bytes(path);
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--) len = (len << 8) | static_cast<unsigned char>(bytes[size_t(i)]);
        INFO("name length " << n << ", header length " << len);
        REQUIRE(len % 8 == 0);
        const std::string header = bytes.substr(8, len);
        REQUIRE(header.front() == '{');
        const size_t close = header.find_last_of('}');
        REQUIRE(header.find_first_not_of(' ', close + 1) == std::string::npos);  // only spaces after the object
        const nlohmann::ordered_json v = nlohmann::ordered_json::parse(header);  // keeps the file order
        REQUIRE(v.is_object());
        std::vector<std::string> keys;
        for (auto it = v.begin(); it != v.end(); ++it) keys.push_back(it.key());
        REQUIRE(keys == std::vector<std::string>{"__metadata__", name, "b", "c"});
        int64_t expect = 0;
        for (size_t i = 1; i < 4; i++) {
            const nlohmann::ordered_json& e = v.at(keys[i]);
            std::vector<std::string> fields;
            for (auto it = e.begin(); it != e.end(); ++it) fields.push_back(it.key());
            REQUIRE(fields == std::vector<std::string>{"dtype", "shape", "data_offsets"});
            REQUIRE(e.at("data_offsets").at(0).get<int64_t>() == expect);
            expect = e.at("data_offsets").at(1).get<int64_t>();
        }
        REQUIRE(expect == n * 4 + 32 + 3);
        REQUIRE(bytes.size() == 8 + len + uint64_t(expect));
        REQUIRE(v.at("b").at("dtype") == "F64");
        REQUIRE(v.at("c").at("dtype") == "U8");
    }
}

TEST_CASE("safetensors header bytes: compact JSON, strings escaped, UTF-8 kept", "[io]") {
    const std::string path = out_path("exact_header.safetensors");
    io::save_tensors(path, {{"w", Tensor::ones({2, 3})}, {"caf\xc3\xa9\n", Tensor::zeros({}, DType::int64)}},
                     {{"epoch", "3"}, {"q\"\\", "tab\t\x01\x7f"}});
    std::string expected = R"({"__metadata__":{"epoch":"3","q\"\\":"tab\t\u0001)"
                           "\x7f"
                           R"("},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                           "\"caf\xc3\xa9\\n\""
                           R"(:{"dtype":"I64","shape":[],"data_offsets":[24,32]}})";
    expected.append((8 - expected.size() % 8) % 8, ' ');
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() == 8 + expected.size() + 32);
    CHECK(bytes.substr(0, 8) == le64(expected.size()));
    CHECK(bytes.substr(8, expected.size()) == expected);
}

TEST_CASE("safetensors hand-built file loads: whitespace, escapes, any header order", "[io]") {
    const std::vector<float> a = {1.5f, -2.0f, 3.25f};
    const std::vector<int32_t> b = {42};
    // Pretty-printed header, \u escapes (one a surrogate pair), "b" listed first although its bytes come second, and
    // an empty tensor in between.
    const std::string header =
        "{\n  \"b\": {\"dtype\": \"I32\", \"shape\": [], \"data_offsets\": [12, 16]},\n"
        "  \"__metadata__\": {\"who\": \"hand\\u002dmade \\ud83d\\ude42\"},\n"
        "  \"caf\\u00e9\": {\"shape\": [3], \"data_offsets\": [0, 12], \"dtype\": \"F32\"},\n"
        "  \"none\": {\"dtype\": \"F64\", \"shape\": [0, 5], \"data_offsets\": [12, 12]}\n}  ";
    const std::string path = hand_file("hand.safetensors", header, raw(a) + raw(b));
    io::Metadata meta;
    const nn::NamedTensors t = io::load_tensors(path, &meta);
    REQUIRE(meta == io::Metadata{{"who", "hand-made \xf0\x9f\x99\x82"}});
    REQUIRE(t.size() == 3);
    REQUIRE(t[0].first == "b");  // file order
    REQUIRE(t[0].second.shape() == Shape{});
    REQUIRE(t[0].second.to_vector<int32_t>() == b);
    REQUIRE(t[1].first == "caf\xc3\xa9");
    REQUIRE(t[1].second.to_vector<float>() == a);
    REQUIRE(t[2].first == "none");
    REQUIRE(t[2].second.shape() == Shape{0, 5});
    REQUIRE(t[2].second.dtype() == DType::float64);
}

TEST_CASE("safetensors file written by Python's safetensors loads", "[io]") {
    io::Metadata meta;
    const nn::NamedTensors t = io::load_tensors(std::string(DYAD_GOLDEN_DIR) + "/basic_block.safetensors", &meta);
    REQUIRE(meta.at("momentum") == "0.1");
    REQUIRE_FALSE(t.empty());
    bool found = false;
    for (const auto& [name, v] : t) {
        if (name != "param.conv1.weight") continue;
        found = true;
        REQUIRE(v.shape() == Shape{8, 4, 3, 3});
        REQUIRE(v.dtype() == DType::float32);
    }
    REQUIRE(found);
}

TEST_CASE("safetensors I64 is read as int64, every value kept, and written back as I64", "[io]") {
    const std::string header = R"({"labels":{"dtype":"I64","shape":[5],"data_offsets":[0,40]}})";
    const std::vector<int64_t> v = {0, -1, 2147483648LL, INT64_MAX, INT64_MIN};
    const std::string path = hand_file("i64.safetensors", header, raw(v));
    const nn::NamedTensors t = io::load_tensors(path);
    REQUIRE(t[0].second.dtype() == DType::int64);
    REQUIRE(t[0].second.to_vector<int64_t>() == v);

    const std::string out = out_path("i64_round_trip.safetensors");
    io::save_tensors(out, {{"labels", t[0].second}, {"small", Tensor::from_vector(std::vector<int64_t>{3, -4}, {2})}});
    const std::string bytes = read_bytes(out);
    REQUIRE(bytes.find(R"("dtype":"I64")") != std::string::npos);
    const nn::NamedTensors back = io::load_tensors(out);
    REQUIRE(back[0].second.dtype() == DType::int64);
    REQUIRE(back[0].second.to_vector<int64_t>() == v);
    REQUIRE(back[1].second.to_vector<int64_t>() == std::vector<int64_t>{3, -4});
}

// ---------------------------------------------------------------------------- corruption
TEST_CASE("safetensors corrupt length field or header", "[io][errors]") {
    const std::string f4 = raw(std::vector<float>{1, 2});

    SECTION("file shorter than 8 bytes") {
        const std::string path = out_path("short.safetensors");
        write_bytes(path, "abcde");
        require_load_error(path, {"5 bytes", "shorter than the 8-byte header length"});
        write_bytes(path, "");
        require_load_error(path, {"0 bytes", "shorter than"});
    }
    SECTION("header length beyond the file") {
        const std::string path = out_path("beyond.safetensors");
        write_bytes(path, le64(1000) + "{}");
        require_load_error(path, {"header length 1000", "exceeds the file size"});
    }
    SECTION("header length over 100 MB") {
        const std::string path = out_path("huge.safetensors");
        write_bytes(path, le64(200000000) + "{}");
        require_load_error(path, {"header length 200000000", "100 MB"});
        write_bytes(path, le64(~uint64_t(0)) + "{}");
        require_load_error(path, {"100 MB"});
    }
    SECTION("missing file") {
        require_load_error(out_path("does_not_exist.safetensors"), {"cannot open", "No such file"});
    }
    SECTION("invalid JSON") {
        require_load_error(hand_file("json1.safetensors", R"({"a":{"dtype":"F32",}})", f4),
                           {"invalid JSON header", "while parsing object key", "header byte 20", "file offset 28"});
        require_load_error(hand_file("json2.safetensors", R"({"a":)", f4), {"invalid JSON header", "end of input"});
        require_load_error(hand_file("json3.safetensors", "[1, 2]", ""), {"not an object"});
        require_load_error(
            hand_file("json4.safetensors", R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", f4),
            {"'a'", "shape entries must be integers", "floating-point number (2.0)"});
        require_load_error(hand_file("json5.safetensors", "{} x", ""),
                           {"invalid JSON header", "expected end of input", "header byte 3"});
    }
    SECTION("entry structure and metadata") {
        require_load_error(hand_file("e1.safetensors", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f4),
                           {"'a'", "missing 'dtype'"});
        require_load_error(
            hand_file("e2.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", f4),
            {"'a'", "unexpected key 'x'"});
        require_load_error(hand_file("e3.safetensors", R"({"a":[1]})", ""), {"'a'", "not an object"});
        require_load_error(hand_file("e4.safetensors", R"({"__metadata__":{"k":3}})", ""),
                           {"metadata 'k'", "not a string"});
        require_load_error(hand_file("e5.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f4),
                           {"'a'", "two integers"});
    }
}

TEST_CASE("safetensors corrupt dtypes, shapes and offsets", "[io][errors]") {
    const std::string f8 = raw(std::vector<float>{1, 2});  // 8 bytes
    auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int64_t b, int64_t e) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
               std::to_string(b) + "," + std::to_string(e) + "]}";
    };

    SECTION("unknown dtype") {
        require_load_error(hand_file("dt1.safetensors", "{" + entry("w", "F16", "[4]", 0, 8) + "}", f8),
                           {"'w'", "unsupported dtype 'F16'"});
        require_load_error(hand_file("dt2.safetensors", "{" + entry("w", "float", "[2]", 0, 8) + "}", f8),
                           {"'w'", "unsupported dtype 'float'"});
    }
    SECTION("negative or overflowing shape") {
        require_load_error(hand_file("sh1.safetensors", "{" + entry("w", "F32", "[2,-1]", 0, 8) + "}", f8),
                           {"'w'", "negative dimension -1"});
        require_load_error(
            hand_file("sh2.safetensors", "{" + entry("w", "F32", "[4294967296,4294967296]", 0, 8) + "}", f8),
            {"'w'", "overflows"});
        require_load_error(
            hand_file("sh3.safetensors", "{" + entry("w", "F32", "[99999999999999999999]", 0, 8) + "}", f8),
            {"invalid JSON header", "99999999999999999999", "64-bit range", "'w'"});
        require_load_error(hand_file("sh4.safetensors", "{" + entry("w", "F32", "[\"2\"]", 0, 8) + "}", f8),
                           {"'w'", "must be integers"});
    }
    SECTION("data_offsets not matching the shape") {
        require_load_error(hand_file("off1.safetensors", "{" + entry("w", "F32", "[3]", 0, 8) + "}", f8),
                           {"'w'", "hold 8 bytes", "needs 12"});
        require_load_error(hand_file("off2.safetensors", "{" + entry("w", "F32", "[2]", -8, 0) + "}", f8),
                           {"'w'", "negative data offset"});
    }
    SECTION("overlapping, gapped, out-of-order offsets") {
        const std::string f12 = f8 + raw(std::vector<float>{3});
        require_load_error(
            hand_file("ov.safetensors",
                      "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", f12),
            {"'b'", "overlap", "'a'"});
        require_load_error(
            hand_file("gap.safetensors",
                      "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}", f12),
            {"'b'", "gap of 4 bytes", "'a'"});
        require_load_error(hand_file("gap0.safetensors", "{" + entry("a", "F32", "[1]", 4, 8) + "}", f8),
                           {"'a'", "gap of 4 bytes", "the header"});
        require_load_error(hand_file("order.safetensors", "{" + entry("a", "F32", "[0]", 8, 0) + "}", f8),
                           {"'a'", "out of order"});
    }
    SECTION("data past the end of the file, trailing bytes") {
        require_load_error(hand_file("eof.safetensors", "{" + entry("a", "F32", "[4]", 0, 16) + "}", f8),
                           {"'a'", "past the end of the file", "8 data bytes"});
        require_load_error(hand_file("trail.safetensors", "{" + entry("a", "F32", "[1]", 0, 4) + "}", f8),
                           {"4 trailing bytes"});
    }
    SECTION("duplicate names") {
        require_load_error(
            hand_file("dup.safetensors",
                      "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}", f8),
            {"'a'", "duplicate tensor name"});
    }
}

// nlohmann/json's own parser keeps one of two equal keys, turns integers beyond int64 into doubles (or
// unsigned integers up to 2^64 - 1) and nests without bound; the header reader refuses all of these.
TEST_CASE("safetensors header: repeated keys, integers beyond int64, floats and deep nesting are refused",
          "[io][errors]") {
    const std::string f8 = raw(std::vector<float>{1, 2});
    const std::string fields = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
    auto with_offsets = [](const std::string& offsets) {
        return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}";
    };

    SECTION("repeated keys, at every level") {
        require_load_error(hand_file("rk1.safetensors", R"({"a":{"dtype":"F32",)" + fields + "}}", f8),
                           {"tensor 'a'", "duplicate key 'dtype'"});
        require_load_error(
            hand_file("rk2.safetensors", R"({"__metadata__":{"k":"1","j":"2","k":"3"},"a":{)" + fields + "}}", f8),
            {"duplicate metadata key 'k'"});
        require_load_error(
            hand_file("rk3.safetensors", R"({"__metadata__":{},"a":{)" + fields + R"(},"__metadata__":{}})", f8),
            {"duplicate '__metadata__'"});
        require_load_error(hand_file("rk4.safetensors", R"({"a":{"dtype":"F32","shape":[{"x":1,"x":2}]}})", f8),
                           {"tensor 'a'", "duplicate key 'x'"});
        // The same key spelled with an escape is the same key.
        require_load_error(
            hand_file("rk5.safetensors", R"({"a":{)" + fields + R"(},"\u0061":{)" + fields + "}}", f8 + f8),
            {"tensor 'a'", "duplicate tensor name"});
        // Equal keys in different objects are fine.
        const std::string two = R"({"a":{)" + fields + R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
        REQUIRE(io::load_tensors(hand_file("rk_ok.safetensors", two, f8 + f8)).size() == 2);
    }
    SECTION("integers beyond int64, as offsets or dimensions, are errors, never wrapped or rounded") {
        for (const std::string big : {"9223372036854775808", "18446744073709551615", "18446744073709551616",
                                      "-9223372036854775809", "123456789012345678901234567890"}) {
            INFO(big);
            require_load_error(hand_file("big1.safetensors", with_offsets("[0," + big + "]"), f8),
                               {"invalid JSON header", "integer " + big, "out of the 64-bit range", "tensor 'a'"});
            require_load_error(hand_file("big2.safetensors",
                                         R"({"a":{"dtype":"F32","shape":[)" + big + R"(],"data_offsets":[0,8]}})", f8),
                               {"invalid JSON header", "integer " + big, "out of the 64-bit range", "tensor 'a'"});
        }
        require_load_error(hand_file("big3.safetensors", R"({"__metadata__":{"k":18446744073709551615}})", ""),
                           {"integer 18446744073709551615", "out of the 64-bit range", "'__metadata__'"});
        // The largest int64 is read exactly, then found to run past the end of the file.
        require_load_error(hand_file("big4.safetensors", with_offsets("[9223372036854775799,9223372036854775807]"), f8),
                           {"'a'", "[9223372036854775799, 9223372036854775807]", "past the end of the file"});
        require_load_error(hand_file("big5.safetensors", with_offsets("[0,-9223372036854775808]"), f8),
                           {"'a'", "negative data offset -9223372036854775808"});
        require_load_error(
            hand_file("big6.safetensors",
                      R"({"a":{"dtype":"F32","shape":[9223372036854775807,2],"data_offsets":[0,8]}})", f8),
            {"'a'", "overflows 64 bits"});
    }
    SECTION("floating-point numbers where integers are required") {
        for (const std::string offsets : {"[0,8.0]", "[0,8e0]", "[0.0,8]", "[0,8E+0]", "[-0.0,8]"}) {
            INFO(offsets);
            require_load_error(hand_file("fl1.safetensors", with_offsets(offsets), f8),
                               {"'a'", "'data_offsets' must be an array of two integers", "floating-point number"});
        }
        require_load_error(
            hand_file("fl2.safetensors", R"({"a":{"dtype":"F32","shape":[1e0,2],"data_offsets":[0,8]}})", f8),
            {"'a'", "shape entries must be integers", "floating-point number (1.0)"});
        require_load_error(hand_file("fl3.safetensors", with_offsets("[0,1e400]"), f8),
                           {"invalid JSON header", "number overflow", "1e400"});
        require_load_error(hand_file("fl4.safetensors", R"({"__metadata__":{"lr":0.5}})", ""),
                           {"metadata 'lr'", "floating-point number (0.5)", "not a string"});
    }
    SECTION("nesting: 64 levels are read, 65 are refused, and a deep input does not exhaust the stack") {
        // The root object is level 1; 63 arrays inside it make 64.
        require_load_error(
            hand_file("deep1.safetensors", R"({"a":)" + std::string(63, '[') + std::string(63, ']') + "}", ""),
            {"'a'", "the entry is an array, not an object"});
        require_load_error(
            hand_file("deep2.safetensors", R"({"a":)" + std::string(64, '[') + std::string(64, ']') + "}", ""),
            {"invalid JSON header", "nesting deeper than 64 levels", "tensor 'a'"});
        require_load_error(hand_file("deep3.safetensors", std::string(1000000, '['), ""),
                           {"invalid JSON header", "nesting deeper than 64 levels"});
        require_load_error(hand_file("deep4.safetensors", R"({"a":{"dtype":)" + std::string(100000, '['), ""),
                           {"invalid JSON header", "nesting deeper than 64 levels", "tensor 'a'"});
    }
    SECTION("syntax the JSON grammar refuses, with the byte where it was found") {
        const std::string good = R"({"a":{)" + fields + "}}";
        require_load_error(hand_file("syn1.safetensors", "{\"\xff\":{" + fields + "}}", f8),
                           {"invalid JSON header", "UTF-8", "header byte 2"});
        require_load_error(hand_file("syn2.safetensors", "{\"\xc0\xaf\":{" + fields + "}}", f8),
                           {"invalid JSON header", "UTF-8"});  // overlong '/'
        require_load_error(hand_file("syn3.safetensors", "{\"\xed\xa0\x80\":{" + fields + "}}", f8),
                           {"invalid JSON header", "UTF-8"});  // a surrogate written as UTF-8
        require_load_error(hand_file("syn4.safetensors", R"({"\ud83d":{)" + fields + "}}", f8),
                           {"invalid JSON header", "surrogate"});
        require_load_error(hand_file("syn5.safetensors", R"({"\ude42":{)" + fields + "}}", f8),
                           {"invalid JSON header", "surrogate"});
        require_load_error(hand_file("syn6.safetensors", "{\"a\nb\":{" + fields + "}}", f8),
                           {"invalid JSON header", "control character"});
        require_load_error(
            hand_file("syn7.safetensors", R"({"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}})", f8),
            {"invalid JSON header", "header byte"});
        require_load_error(hand_file("syn8.safetensors", R"({'a':{)" + fields + "}}", f8),
                           {"invalid JSON header", "header byte 1"});
        require_load_error(hand_file("syn9.safetensors", good + "}", f8), {"invalid JSON header", "end of input"});
        require_load_error(hand_file("syn10.safetensors", good.substr(0, 30), f8), {"invalid JSON header"});
        require_load_error(hand_file("syn11.safetensors", "", f8), {"invalid JSON header", "header byte 0"});
        require_load_error(hand_file("syn12.safetensors", std::string("{\"a\\u0000\":") + '\0' + "}", ""),
                           {"invalid JSON header", "header byte 11"});
        // nlohmann's reader alone would skip a byte order mark, and stop reading at a NUL byte.
        require_load_error(hand_file("syn14.safetensors", "\xef\xbb\xbf" + good, f8),
                           {"invalid JSON header", "byte order mark"});
        require_load_error(hand_file("syn15.safetensors", good + '\0' + "garbage", f8),
                           {"invalid JSON header", "NUL byte at header byte " + std::to_string(good.size())});
        // A long bad token is cut to its end in the message.
        const std::string long_name(5000, 'n');
        try {
            (void)io::load_tensors(hand_file("syn13.safetensors", "{\"" + long_name + "\xff\":{}}", ""));
            FAIL("no exception");
        } catch (const Error& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK_THAT(msg, Contains("UTF-8") && Contains("...nnnn") && Contains("header byte 5002"));
            CHECK(msg.size() < 600);
        }
    }
}

// ---------------------------------------------------------------------------- writing
TEST_CASE("safetensors save rejects bad names before creating a file", "[io][errors]") {
    const std::string path = out_path("bad_names.safetensors");
    fs::remove(path);
    const Tensor t = Tensor::ones({1});
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"a", t}, {"a", t}}),
                        Contains(path) && Contains("duplicate tensor name 'a'"));
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"", t}}), Contains("empty tensor name"));
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"__metadata__", t}}), Contains("reserved"));
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"u", Tensor()}}), Contains("'u' is undefined"));
    // JSON text is UTF-8: a name or metadata entry that is not would make a file no reader accepts.
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"a\xff", t}}),
                        Contains(path) && Contains("tensor name") && Contains("is not valid UTF-8"));
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"a", t}}, {{"k\xc3", "v"}}),
                        Contains(path) && Contains("metadata key") && Contains("is not valid UTF-8"));
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"a", t}}, {{"k", "\xed\xa0\x80"}}),
                        Contains(path) && Contains("metadata 'k'") && Contains("is not valid UTF-8"));
    REQUIRE_FALSE(fs::exists(path));
    REQUIRE(temp_files_of(path).empty());
}

TEST_CASE("safetensors atomic write: a missing directory throws and leaves nothing behind", "[io][errors]") {
    const std::string dir = out_path("no_such_dir");
    fs::remove_all(dir);
    const std::string path = dir + "/x.safetensors";
    REQUIRE_THROWS_WITH(io::save_tensors(path, {{"a", Tensor::ones({2})}}),
                        Contains(path) && Contains("No such file or directory"));
    REQUIRE_FALSE(fs::exists(dir));
    REQUIRE(temp_files_of(path).empty());

    // A failure after the data was written (rename over a directory) removes the temporary file and
    // leaves the target as it was.
    const std::string target = out_path("a_directory");
    fs::create_directories(target + "/inside");
    REQUIRE_THROWS_WITH(io::save_tensors(target, {{"a", Tensor::ones({2})}}),
                        Contains(target) && Contains("rename") && Contains("Is a directory"));
    REQUIRE(fs::is_directory(target + "/inside"));
    REQUIRE(temp_files_of(target).empty());
}

TEST_CASE("safetensors overwriting an existing file replaces it whole", "[io]") {
    const std::string path = out_path("overwrite.safetensors");
    io::save_tensors(path, {{"big", Tensor::ones({1000})}, {"other", Tensor::ones({7})}}, {{"v", "1"}});
    const auto big_size = fs::file_size(path);
    io::save_tensors(path, {{"small", Tensor::full({2}, 5.0)}}, {{"v", "2"}});
    REQUIRE(fs::file_size(path) < big_size);
    io::Metadata meta;
    const nn::NamedTensors t = io::load_tensors(path, &meta);
    REQUIRE(meta.at("v") == "2");
    REQUIRE(t.size() == 1);
    REQUIRE(t[0].first == "small");
    REQUIRE(t[0].second.to_vector<float>() == std::vector<float>{5, 5});
    REQUIRE(temp_files_of(path).empty());
}
