// IDX files: hand-written small files, plain and gzip'd, read back value for value; every kind of damage
// (bad magic, wrong type, wrong number of dimensions, truncated header or data, trailing bytes, a cut gzip
// stream, a missing file) gives an error naming the file; load_fashion_mnist on small hand-made files and,
// when the Debian package is installed, on the real data set.
#include <zlib.h>
#include "support/catch.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
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

std::string out_path(const std::string& name) { return test::output_path("data_idx", name); }

// Writes `bytes` gzip-compressed (compression level 9) with zlib.
void write_gzip(const std::string& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb9");
    REQUIRE(f != nullptr);
    const int written = gzwrite(f, bytes.data(), unsigned(bytes.size()));
    const int closed = gzclose(f);
    REQUIRE(written == int(bytes.size()));
    REQUIRE(closed == Z_OK);
    // A real gzip stream: the gzip magic, and not the bytes themselves.
    const std::string gz = read_bytes(path);
    REQUIRE(gz.size() >= 18);
    REQUIRE(uint8_t(gz[0]) == 0x1f);
    REQUIRE(uint8_t(gz[1]) == 0x8b);
}

std::string be32(uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; i++) s[size_t(i)] = char((v >> (24 - 8 * i)) & 0xff);
    return s;
}

// An IDX file: 0, 0, type, dims.size(), the big-endian sizes, then `data`.
std::string idx(const std::vector<uint32_t>& dims, const std::string& data, uint8_t type = 0x08) {
    std::string s = {'\0', '\0', char(type), char(dims.size())};
    for (const uint32_t d : dims) s += be32(d);
    return s + data;
}

// n bytes of a fixed pattern that uses every byte value.
std::string pattern(size_t n, unsigned mul = 37, unsigned add = 11) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++) s[i] = char((i * mul + add) & 0xff);
    return s;
}

std::vector<uint8_t> as_vector(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// read_idx(path) throws an error naming the file and containing each of `parts`.
void require_idx_error(const std::string& path, const std::vector<std::string>& parts) {
    try {
        (void)data::read_idx(path);
        FAIL("no exception for " << path);
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(path));
        for (const std::string& p : parts) CHECK_THAT(msg, Contains(p));
    }
}

// Writes `bytes` as `name` plain and as `name`.gz; returns both paths.
std::vector<std::string> both(const std::string& name, const std::string& bytes) {
    const std::string plain = out_path(name), gz = out_path(name + ".gz");
    write_bytes(plain, bytes);
    write_gzip(gz, bytes);
    return {plain, gz};
}

}  // namespace

// ---------------------------------------------------------------------------- reading
TEST_CASE("read_idx reads images and labels, plain and gzip'd, value for value", "[data][idx]") {
    const std::string pixels = pattern(3 * 5 * 4);
    const std::string labels = {char(0), char(9), char(3), char(255)};
    for (const std::string& path : both("images3x5x4.idx", idx({3, 5, 4}, pixels))) {
        INFO(path);
        const Tensor t = data::read_idx(path);
        REQUIRE(t.dtype() == DType::uint8);
        REQUIRE(t.shape() == Shape{3, 5, 4});
        REQUIRE(t.to_vector<uint8_t>() == as_vector(pixels));
        // Row-major: element (n, r, c) is byte n*20 + r*4 + c of the data.
        REQUIRE(int(t.select(0, 2).select(0, 1).select(0, 3).item()) == uint8_t(pixels[2 * 20 + 1 * 4 + 3]));
    }
    for (const std::string& path : both("labels4.idx", idx({4}, labels))) {
        INFO(path);
        const Tensor t = data::read_idx(path);
        REQUIRE(t.dtype() == DType::uint8);
        REQUIRE(t.shape() == Shape{4});
        REQUIRE(t.to_vector<uint8_t>() == std::vector<uint8_t>{0, 9, 3, 255});
    }
}

TEST_CASE("read_idx reads a gzip'd file larger than its buffers and an empty one", "[data][idx]") {
    // 3 MB of data: several zlib buffers' worth; a pattern that compresses, so the gzip file is much smaller.
    const std::string pixels = pattern(size_t(1000) * 60 * 50, 7, 3);
    const std::string path = out_path("big.idx.gz");
    write_gzip(path, idx({1000, 60, 50}, pixels));
    REQUIRE(fs::file_size(path) < pixels.size() / 4);
    const Tensor t = data::read_idx(path);
    REQUIRE(t.shape() == Shape{1000, 60, 50});
    REQUIRE(t.to_vector<uint8_t>() == as_vector(pixels));

    for (const std::string& p : both("empty_labels.idx", idx({0}, ""))) {
        const Tensor e = data::read_idx(p);
        REQUIRE(e.shape() == Shape{0});
    }
}

// ---------------------------------------------------------------------------- errors
TEST_CASE("read_idx rejects a bad magic, a wrong type and a wrong number of dimensions", "[data][idx][errors]") {
    std::string bad_magic = idx({2}, "ab");
    bad_magic[1] = 0x08;
    for (const std::string& p : both("bad_magic.idx", bad_magic)) require_idx_error(p, {"bad magic", "0x00080801"});
    for (const std::string& p : both("float_type.idx", idx({2}, "abcdefgh", 0x0D)))
        require_idx_error(p, {"wrong type byte", "0x0D"});
    for (const std::string& p : both("int_type.idx", idx({2}, "abcdefgh", 0x0C)))
        require_idx_error(p, {"wrong type byte", "0x0C"});
    for (const std::string& p : both("two_dims.idx", idx({2, 3}, "abcdef")))
        require_idx_error(p, {"2 dimensions", "expected 1"});
    for (const std::string& p : both("no_dims.idx", idx({}, ""))) require_idx_error(p, {"0 dimensions", "expected 1"});
    // A JPEG is not an IDX file.
    write_bytes(out_path("jpeg.idx"), "\xff\xd8\xff\xe0 not idx");
    require_idx_error(out_path("jpeg.idx"), {"bad magic", "0xFFD8FFE0"});
}

TEST_CASE("read_idx rejects truncated headers and data and trailing bytes", "[data][idx][errors]") {
    const std::string full = idx({2, 3, 4}, pattern(24));
    for (const size_t cut : {size_t(0), size_t(3)}) {
        for (const std::string& p : both("short_magic" + std::to_string(cut) + ".idx", full.substr(0, cut)))
            require_idx_error(p, {"truncated header"});
    }
    for (const size_t cut : {size_t(4), size_t(9), size_t(15)}) {
        for (const std::string& p : both("short_sizes" + std::to_string(cut) + ".idx", full.substr(0, cut)))
            require_idx_error(p, {"truncated header", "bytes of dimension sizes"});
    }
    for (const size_t cut : {size_t(16), size_t(17), full.size() - 1}) {
        for (const std::string& p : both("short_data" + std::to_string(cut) + ".idx", full.substr(0, cut)))
            require_idx_error(p, {"truncated data", "(2, 3, 4)", "24 bytes"});
    }
    for (const std::string& p : both("trailing.idx", full + "xyz")) require_idx_error(p, {"3 trailing bytes"});
    for (const std::string& p : both("trailing_labels.idx", idx({2}, "ab") + std::string(1, '\0')))
        require_idx_error(p, {"1 trailing bytes"});
}

TEST_CASE("read_idx rejects a cut gzip stream and sizes that no file of its size can hold", "[data][idx][errors]") {
    const std::string full = idx({40, 30, 20}, pattern(24000, 101, 7));
    const std::string path = out_path("whole.idx.gz");
    write_gzip(path, full);
    const std::string gz = read_bytes(path);
    // The compressed bytes cut in the middle: the data ends early.
    write_bytes(out_path("cut.idx.gz"), gz.substr(0, gz.size() / 2));
    require_idx_error(out_path("cut.idx.gz"), {"truncated data", "24000 bytes"});
    // Damaged compressed bytes: zlib's complaint is passed on.
    std::string damaged = gz;
    for (size_t i = 40; i < 60; i++) damaged[i] = char(~damaged[i]);
    write_bytes(out_path("damaged.idx.gz"), damaged);
    try {
        (void)data::read_idx(out_path("damaged.idx.gz"));
        FAIL("damaged gzip data was accepted");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(out_path("damaged.idx.gz")));
    }
    // A header that claims 4G x 4G x 4G bytes: refused before anything is allocated.
    const std::string huge = idx({0xffffffffu, 0xffffffffu, 0xffffffffu}, "abc");
    for (const std::string& p : both("huge.idx", huge))
        require_idx_error(p, {"(4294967295, 4294967295, 4294967295)", "too large"});
    const std::string large = idx({0xffffffu, 0xffffu, 1}, "abc");  // 2^40 bytes claimed, 3 present
    const std::string claimed = std::to_string(uint64_t(0xffffff) * uint64_t(0xffff));
    for (const std::string& p : both("large.idx", large)) require_idx_error(p, {"truncated", claimed + " bytes"});
}

TEST_CASE("read_idx names a missing file or a directory", "[data][idx][errors]") {
    require_idx_error(out_path("does-not-exist.idx.gz"), {"cannot open", "No such file"});
    require_idx_error(out_path("."), {"not a regular file"});
}

// ---------------------------------------------------------------------------- Fashion-MNIST
namespace {

// A directory holding the four Fashion-MNIST files with `n_train` and `n_val` images of 28x28.
std::string fake_fashion(const std::string& name, uint32_t n_train, uint32_t n_val, uint32_t n_val_labels, bool gzip) {
    const std::string dir = out_path(name);
    fs::create_directories(dir);
    auto put = [&](const std::string& file, const std::string& bytes) {
        if (gzip) {
            write_gzip(dir + "/" + file + ".gz", bytes);
        } else {
            write_bytes(dir + "/" + file, bytes);
        }
    };
    put("train-images-idx3-ubyte", idx({n_train, 28, 28}, pattern(size_t(n_train) * 784, 13, 1)));
    std::string train_labels;
    for (uint32_t i = 0; i < n_train; i++) train_labels += char((i * 3) % 10);
    put("train-labels-idx1-ubyte", idx({n_train}, train_labels));
    put("t10k-images-idx3-ubyte", idx({n_val, 28, 28}, pattern(size_t(n_val) * 784, 17, 5)));
    std::string val_labels;
    for (uint32_t i = 0; i < n_val_labels; i++) val_labels += char(9 - i % 10);
    put("t10k-labels-idx1-ubyte", idx({n_val_labels}, val_labels));
    return dir;
}

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

}  // namespace

TEST_CASE("load_fashion_mnist on small hand-made files, gzip'd or plain", "[data][idx]") {
    for (const bool gzip : {true, false}) {
        INFO("gzip " << gzip);
        const std::string dir = fake_fashion(gzip ? "fashion_gz" : "fashion_plain", 12, 5, 5, gzip);
        const data::Split s = data::load_fashion_mnist(dir);
        REQUIRE(s.train.images.shape() == Shape{12, 28, 28, 1});
        REQUIRE(s.val.images.shape() == Shape{5, 28, 28, 1});
        REQUIRE(s.train.images.dtype() == DType::uint8);
        REQUIRE(s.train.labels.dtype() == DType::int32);
        REQUIRE(s.train.labels.shape() == Shape{12});
        REQUIRE(s.train.images.contiguous().to_vector<uint8_t>() == as_vector(pattern(12 * 784, 13, 1)));
        REQUIRE(s.val.images.contiguous().to_vector<uint8_t>() == as_vector(pattern(5 * 784, 17, 5)));
        const std::vector<int32_t> train_labels = s.train.labels.to_vector<int32_t>();
        for (int i = 0; i < 12; i++) REQUIRE(train_labels[size_t(i)] == (i * 3) % 10);
        REQUIRE(s.val.labels.to_vector<int32_t>() == std::vector<int32_t>{9, 8, 7, 6, 5});
        for (const data::Dataset* d : {&s.train, &s.val}) {
            REQUIRE(d->classes() == 10);
            REQUIRE(d->class_names == kFashionNames);
            REQUIRE(d->class_ids == std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
        }
    }
}

TEST_CASE("load_fashion_mnist errors: missing files, counts that disagree, labels out of range",
          "[data][idx][errors]") {
    const std::string empty = out_path("fashion_empty");
    fs::create_directories(empty);
    try {
        (void)data::load_fashion_mnist(empty);
        FAIL("an empty directory was accepted");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(empty));
        CHECK_THAT(msg, Contains("train-images-idx3-ubyte.gz"));
        CHECK_THAT(msg, Contains("t10k-labels-idx1-ubyte.gz"));
        CHECK_THAT(msg, Contains("bash scripts/setup.sh"));
        CHECK_THAT(msg, Contains("dataset-fashion-mnist"));
    }

    const std::string mismatch = fake_fashion("fashion_mismatch", 4, 3, 2, true);
    try {
        (void)data::load_fashion_mnist(mismatch);
        FAIL("3 images with 2 labels were accepted");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(mismatch + "/t10k-images-idx3-ubyte.gz"));
        CHECK_THAT(msg, Contains("3 images"));
        CHECK_THAT(msg, Contains("2 labels"));
    }

    const std::string bad_label = fake_fashion("fashion_bad_label", 4, 2, 2, false);
    write_bytes(bad_label + "/train-labels-idx1-ubyte", idx({4}, std::string("\x01\x02\x0a\x03", 4)));
    try {
        (void)data::load_fashion_mnist(bad_label);
        FAIL("label 10 was accepted");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(bad_label + "/train-labels-idx1-ubyte"));
        CHECK_THAT(msg, Contains("label 10 at index 2"));
    }
}

TEST_CASE("load_fashion_mnist reads the installed data set", "[data][fashion]") {
    if (!fs::exists(data::kFashionMnistDir)) {
        WARN("skipped: " << data::kFashionMnistDir << " does not exist (bash scripts/setup.sh installs it)");
        return;
    }
    const data::Split s = data::load_fashion_mnist();
    REQUIRE(s.train.images.shape() == Shape{60000, 28, 28, 1});
    REQUIRE(s.val.images.shape() == Shape{10000, 28, 28, 1});
    REQUIRE(s.train.labels.shape() == Shape{60000});
    REQUIRE(s.val.labels.shape() == Shape{10000});
    REQUIRE(s.train.labels.dtype() == DType::int32);
    REQUIRE(s.train.class_names == kFashionNames);
    REQUIRE(s.val.class_names == kFashionNames);
    REQUIRE(s.train.classes() == 10);

    // Both splits are balanced: 6000 and 1000 of each class.
    const std::pair<const data::Dataset*, int> expect[2] = {{&s.train, 6000}, {&s.val, 1000}};
    for (const auto& [d, per_class] : expect) {
        std::vector<int> counts(10, 0);
        for (const int32_t l : d->labels.to_vector<int32_t>()) {
            REQUIRE(l >= 0);
            REQUIRE(l < 10);
            counts[size_t(l)]++;
        }
        for (int c = 0; c < 10; c++) {
            INFO("class " << c);
            CHECK(counts[size_t(c)] == per_class);
        }
    }

    // The published mean pixel of the training images is 0.2860 (72.94 / 255).
    const uint8_t* p = s.train.images.data<uint8_t>();
    const int64_t n = s.train.images.numel();
    uint64_t sum = 0, zeros = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += p[i];
        zeros += p[i] == 0;
    }
    const double mean = double(sum) / double(n) / 255.0;
    CHECK(mean == Approx(72.94 / 255.0).epsilon(0.01));
    // Dark background: about half the pixels are exactly 0, and no image is blank.
    CHECK(double(zeros) / double(n) > 0.3);
    CHECK(double(zeros) / double(n) < 0.7);
    for (int64_t i = 0; i < 60000; i += 997) {
        uint32_t image_sum = 0;
        for (int64_t k = 0; k < 784; k++) image_sum += p[i * 784 + k];
        CHECK(image_sum > 0);
    }
}
