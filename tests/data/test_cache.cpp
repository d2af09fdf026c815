// Data set cache files: a round trip gives back the split byte for byte; every kind of bad cache (missing,
// empty, other version or fingerprint, truncated anywhere, a flipped byte, trailing bytes, absurd lengths)
// makes read_cache return false with a reason and leave the caller's split alone; writes are atomic. Also
// Dataset::head.
#include "support/catch.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/files.h"

using namespace dyad;
using Catch::Contains;
namespace fs = std::filesystem;
using test::read_bytes;
using test::write_bytes;

namespace {

std::string out_path(const std::string& name) { return test::output_path("data_cache", name); }

// A data set of n random h x w x c images with labels in [0, classes).
data::Dataset random_set(int64_t n, int64_t h, int64_t w, int64_t c, int classes, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> pixels(size_t(n * h * w * c));
    for (uint8_t& p : pixels) p = uint8_t(rng() & 0xff);
    std::vector<int32_t> labels(static_cast<size_t>(n));
    for (int32_t& l : labels) l = int32_t(rng() % uint32_t(classes));
    data::Dataset d;
    d.images = Tensor::from_vector(pixels, {n, h, w, c});
    d.labels = Tensor::from_vector(labels, {n});
    for (int k = 0; k < classes; k++) {
        d.class_ids.push_back("n0" + std::to_string(1000 + k));
        d.class_names.push_back("class number " + std::to_string(k) + ", with a comma");
    }
    return d;
}

data::Split small_split(uint32_t seed = 1) {
    data::Split s;
    s.train = random_set(7, 5, 4, 3, 4, seed);
    s.val = random_set(3, 5, 4, 3, 4, seed + 100);
    return s;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
    const Tensor ac = a.contiguous(), bc = b.contiguous();
    return std::memcmp(ac.raw_data(), bc.raw_data(), size_t(a.numel()) * dtype_size(a.dtype())) == 0;
}

void require_same(const data::Dataset& a, const data::Dataset& b) {
    REQUIRE(same_bytes(a.images, b.images));
    REQUIRE(same_bytes(a.labels, b.labels));
    REQUIRE(a.class_ids == b.class_ids);
    REQUIRE(a.class_names == b.class_names);
}

// A split that read_cache must leave alone when it returns false.
data::Split sentinel() {
    data::Split s;
    s.train.class_ids = {"untouched"};
    return s;
}

// read_cache(path) returns false, with a reason naming the file and containing each of `parts`, and does
// not touch the split.
void require_rejected(const std::string& path, const std::string& fingerprint, const std::vector<std::string>& parts) {
    data::Split s = sentinel();
    std::string why;
    const bool ok = data::read_cache(path, fingerprint, &s, &why);
    INFO("reason: " << why);
    REQUIRE_FALSE(ok);
    CHECK_THAT(why, Contains(path));
    for (const std::string& p : parts) CHECK_THAT(why, Contains(p));
    REQUIRE(s.train.class_ids == std::vector<std::string>{"untouched"});
    REQUIRE_FALSE(s.train.images.defined());
    REQUIRE_FALSE(s.val.images.defined());
}

// Temporary files left next to `path` ("<path>.tmp.<pid>.<n>").
std::vector<std::string> temp_files_of(const std::string& path) {
    std::vector<std::string> out;
    const std::string prefix = fs::path(path).filename().string() + ".tmp.";
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path()))
        if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().string());
    return out;
}

uint64_t le64_at(const std::string& bytes, size_t offset) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | uint8_t(bytes[offset + size_t(i)]);
    return v;
}

void set_le64(std::string& bytes, size_t offset, uint64_t v) {
    for (int i = 0; i < 8; i++) bytes[offset + size_t(i)] = char((v >> (8 * i)) & 0xff);
}

// Byte sizes of the small split's pixel and label blocks, and where the pixels start: everything before
// them is header.
struct Layout {
    size_t pixels_at, train_pixels, train_labels, val_pixels, val_labels;
};
Layout layout_of(const std::string& file, const data::Split& s) {
    Layout l{};
    l.train_pixels = size_t(s.train.images.numel());
    l.train_labels = size_t(s.train.labels.numel()) * 4;
    l.val_pixels = size_t(s.val.images.numel());
    l.val_labels = size_t(s.val.labels.numel()) * 4;
    l.pixels_at = file.size() - 8 - l.train_pixels - l.train_labels - l.val_pixels - l.val_labels;
    return l;
}

}  // namespace

// ---------------------------------------------------------------------------- round trips
TEST_CASE("cache round trip gives back the split byte for byte", "[data][cache]") {
    const data::Split in = small_split();
    const std::string path = out_path("roundtrip.bin");
    data::write_cache(path, in, "files=10 bytes=1234");
    const std::string file = read_bytes(path);
    REQUIRE(file.substr(0, 8) == "DYADDSET");
    // The header is followed by exactly the pixels, the labels and the 8-byte checksum.
    const Layout l = layout_of(file, in);
    REQUIRE(file.substr(l.pixels_at, l.train_pixels) ==
            std::string(static_cast<const char*>(in.train.images.raw_data()), l.train_pixels));

    data::Split out;
    std::string why = "stale";
    REQUIRE(data::read_cache(path, "files=10 bytes=1234", &out, &why));
    REQUIRE(why.empty());
    require_same(out.train, in.train);
    require_same(out.val, in.val);
    REQUIRE(out.train.images.device() == Device::cpu());

    // Writing what was read gives the same file.
    data::write_cache(out_path("roundtrip2.bin"), out, "files=10 bytes=1234");
    REQUIRE(read_bytes(out_path("roundtrip2.bin")) == file);
}

TEST_CASE("cache round trip of views, an empty val set and an undefined one", "[data][cache]") {
    const data::Split big = small_split(5);
    data::Split in;
    in.train = big.train.head(4);  // a view: written from the first 4 images only
    in.val = random_set(0, 5, 4, 3, 4, 9);
    const std::string path = out_path("views.bin");
    data::write_cache(path, in, "fp");
    data::Split out;
    REQUIRE(data::read_cache(path, "fp", &out));
    REQUIRE(out.train.size() == 4);
    require_same(out.train, in.train);
    REQUIRE(out.val.images.shape() == Shape{0, 5, 4, 3});
    REQUIRE(out.val.labels.shape() == Shape{0});

    data::Split no_val;
    no_val.train = big.train;
    data::write_cache(path, no_val, "");
    data::Split out2;
    std::string why;
    REQUIRE(data::read_cache(path, "", &out2, &why));
    INFO(why);
    require_same(out2.train, big.train);
    REQUIRE_FALSE(out2.val.images.defined());
    REQUIRE_FALSE(out2.val.labels.defined());
}

// ---------------------------------------------------------------------------- bad caches
TEST_CASE("cache: missing, empty, bad magic, other version or fingerprint", "[data][cache][errors]") {
    const data::Split in = small_split();
    const std::string path = out_path("good.bin");
    data::write_cache(path, in, "source A");
    const std::string file = read_bytes(path);

    require_rejected(out_path("no-such-cache.bin"), "source A", {"missing"});
    write_bytes(out_path("zero.bin"), "");
    require_rejected(out_path("zero.bin"), "source A", {"empty"});
    require_rejected(path, "source B", {"another source", "'source A'", "'source B'"});

    std::string other = file;
    REQUIRE(le64_at(other, 8) == 1);
    set_le64(other, 8, 2);
    write_bytes(out_path("version2.bin"), other);
    require_rejected(out_path("version2.bin"), "source A", {"version 2"});

    std::string magic = file;
    magic[3] = 'X';
    write_bytes(out_path("magic.bin"), magic);
    require_rejected(out_path("magic.bin"), "source A", {"bad magic"});
}

TEST_CASE("cache truncated at any point is rejected", "[data][cache][errors]") {
    const data::Split in = small_split();
    const std::string path = out_path("to_cut.bin");
    data::write_cache(path, in, "fp");
    const std::string file = read_bytes(path);
    const Layout l = layout_of(file, in);
    const size_t cuts[] = {1,
                           7,
                           12,
                           20,
                           30,
                           l.pixels_at / 2,
                           l.pixels_at - 1,
                           l.pixels_at,
                           l.pixels_at + l.train_pixels / 2,
                           l.pixels_at + l.train_pixels + 3,
                           file.size() - l.val_labels - 8 - 1,
                           file.size() - 8,
                           file.size() - 1};
    for (const size_t cut : cuts) {
        INFO("cut at " << cut << " of " << file.size());
        const std::string p = out_path("cut_" + std::to_string(cut) + ".bin");
        write_bytes(p, file.substr(0, cut));
        require_rejected(p, "fp", {"truncated"});
    }
}

TEST_CASE("cache with a flipped byte, trailing bytes or absurd lengths is rejected", "[data][cache][errors]") {
    const data::Split in = small_split();
    const std::string path = out_path("to_damage.bin");
    data::write_cache(path, in, "fp");
    const std::string file = read_bytes(path);
    const Layout l = layout_of(file, in);

    // One flipped bit or byte in the pixels, in the labels, in a class name, in the checksum.
    const size_t label_at = l.pixels_at + l.train_pixels + 4;
    const size_t name_at = l.pixels_at - 5;  // inside the last val class name
    for (const size_t at : {l.pixels_at, l.pixels_at + 17, l.pixels_at + l.train_pixels - 1, label_at, name_at,
                            file.size() - 8, file.size() - 1}) {
        for (const uint8_t flip : {uint8_t(0x01), uint8_t(0xff)}) {
            INFO("byte " << at << " xor " << int(flip));
            std::string damaged = file;
            damaged[at] = char(uint8_t(damaged[at]) ^ flip);
            const std::string p = out_path("flip.bin");
            write_bytes(p, damaged);
            require_rejected(p, "fp", {"checksum"});
        }
    }

    write_bytes(out_path("trailing.bin"), file + "extra");
    require_rejected(out_path("trailing.bin"), "fp", {"5 unexpected bytes"});

    // The fingerprint length (at byte 16) made huge: refused before any allocation.
    std::string huge = file;
    set_le64(huge, 16, uint64_t(1) << 60);
    write_bytes(out_path("huge_fp.bin"), huge);
    require_rejected(out_path("huge_fp.bin"), "fp", {"truncated", "fingerprint"});

    // The train image count (after magic, version, fingerprint and the 'defined' flag) made huge.
    std::string many = file;
    const size_t count_at = 8 + 8 + 8 + 2 + 8;
    REQUIRE(le64_at(many, count_at) == 7);
    set_le64(many, count_at, uint64_t(1) << 40);
    write_bytes(out_path("huge_count.bin"), many);
    require_rejected(out_path("huge_count.bin"), "fp", {"truncated", "cannot fit"});

    // A plausible count that disagrees with the file size.
    std::string more = file;
    set_le64(more, count_at, 8);
    write_bytes(out_path("count8.bin"), more);
    require_rejected(out_path("count8.bin"), "fp", {"truncated"});
}

// ---------------------------------------------------------------------------- writing
TEST_CASE("cache write is atomic and checks its input", "[data][cache][errors]") {
    const std::string path = out_path("atomic.bin");
    data::write_cache(path, small_split(1), "first");
    data::write_cache(path, small_split(2), "second");  // over an existing cache
    REQUIRE(temp_files_of(path).empty());
    data::Split out;
    REQUIRE(data::read_cache(path, "second", &out));
    require_same(out.train, small_split(2).train);
    std::string why;
    REQUIRE_FALSE(data::read_cache(path, "first", &out, &why));

    // A missing directory: an error naming the file, nothing left behind.
    const std::string nowhere = out_path("no-such-dir/cache.bin");
    try {
        data::write_cache(nowhere, small_split(), "x");
        FAIL("wrote into a missing directory");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(nowhere));
    }
    REQUIRE_FALSE(fs::exists(out_path("no-such-dir")));

    // Labels outside [0, classes) and mismatched counts are refused before a file is created.
    const std::string bad_path = out_path("bad_input.bin");
    fs::remove(bad_path);
    data::Split bad = small_split();
    bad.train.labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 2, 3, 4, 0, 1}, {7});
    REQUIRE_THROWS_WITH(data::write_cache(bad_path, bad, "x"), Contains(bad_path) && Contains("label 4 at index 4"));
    bad = small_split();
    bad.val.labels = bad.val.labels.slice(0, 0, 2);
    REQUIRE_THROWS_WITH(data::write_cache(bad_path, bad, "x"), Contains("3 images but 2 labels"));
    bad = small_split();
    bad.train.images = bad.train.images.reshape({7, 60});
    REQUIRE_THROWS_WITH(data::write_cache(bad_path, bad, "x"), Contains("uint8 (count, h, w, c)"));
    REQUIRE_FALSE(fs::exists(bad_path));
    REQUIRE(temp_files_of(bad_path).empty());
}

// ---------------------------------------------------------------------------- Dataset::head
TEST_CASE("Dataset head is a view of the first samples", "[data][cache]") {
    const data::Dataset d = random_set(10, 3, 2, 1, 5, 4);
    const data::Dataset h = d.head(4);
    REQUIRE(h.size() == 4);
    REQUIRE(h.images.shape() == Shape{4, 3, 2, 1});
    REQUIRE(h.labels.shape() == Shape{4});
    REQUIRE(h.class_ids == d.class_ids);
    REQUIRE(h.class_names == d.class_names);
    // Views: the same memory.
    REQUIRE(h.images.raw_data() == d.images.raw_data());
    REQUIRE(h.labels.raw_data() == d.labels.raw_data());
    const std::vector<int32_t> all = d.labels.to_vector<int32_t>();
    REQUIRE(h.labels.to_vector<int32_t>() == std::vector<int32_t>(all.begin(), all.begin() + 4));
    for (const int64_t n : {int64_t(0), int64_t(-1), int64_t(10), int64_t(11)}) {
        const data::Dataset whole = d.head(n);
        REQUIRE(whole.size() == 10);
        REQUIRE(whole.images.raw_data() == d.images.raw_data());
    }
    REQUIRE(data::Dataset().head(3).size() == 0);
}
