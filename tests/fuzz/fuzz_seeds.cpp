// The seed corpora of the fuzz targets, written with the library's own writers (PNGs with tests/support/png.h,
// single-component JPEGs copied from tests/data/images): `fuzz_seeds DIR` (re)creates DIR/<target>/seed_N for
// jpeg, png, idx, tiny_imagenet, cache and checkpoint. Small valid files of every kind the readers take, plus a
// few malformed ones near the edges of what they accept.
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "dyad/data.h"
#include "dyad/io.h"
#include "dyad/nn.h"
#include "dyad/optim.h"
#include "dyad/tensor.h"
#include "fuzz_util.h"
#include "tests/support/png.h"

namespace fs = std::filesystem;
using namespace dyad;

namespace {

// Numbered seed files in one target's directory.
class Corpus {
public:
    Corpus(const fs::path& root, const std::string& target) : dir_(root / target) {
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    std::string next_path() { return (dir_ / ("seed_" + std::to_string(count_++))).string(); }
    void add(const std::string& bytes) {
        std::ofstream f(next_path(), std::ios::binary);
        f.write(bytes.data(), std::streamsize(bytes.size()));
        DYAD_CHECK(f.good(), "fuzz_seeds: cannot write in '", dir_.string(), "'");
    }
    int count() const { return count_; }

private:
    fs::path dir_;
    int count_ = 0;
};

// A deterministic pattern of n bytes.
std::vector<uint8_t> pattern(size_t n, unsigned mul, unsigned add) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; i++) v[i] = uint8_t((i * mul + add) & 0xff);
    return v;
}

// ---------------------------------------------------------------------------- jpeg
void jpeg_seeds(const fs::path& root) {
    Corpus c(root, "jpeg");
    const std::pair<int, int> sizes[] = {{1, 1}, {8, 8}, {12, 16}, {17, 33}};
    for (const auto& [h, w] : sizes) {
        for (const int channels : {3, 1}) {
            data::Image im;
            im.h = h, im.w = w, im.c = channels;
            im.pixels = pattern(size_t(h * w * channels), 37, unsigned(h + w));
            data::write_jpeg_file(c.next_path(), im, h == 8 ? 30 : 90);
        }
    }
    // Single-component files, which the writer does not make (tests/data/images/README.md).
    for (const char* name : {"gray_8x8.jpg", "gray_16x16.jpg", "gray_20x32.jpg"}) {
        std::ifstream in(std::string(DYAD_TEST_IMAGES_DIR) + "/" + name, std::ios::binary);
        DYAD_CHECK(in.good(), "fuzz_seeds: cannot read ", DYAD_TEST_IMAGES_DIR, "/", name);
        c.add(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
    }
}

// ---------------------------------------------------------------------------- png
void png_seeds(const fs::path& root) {
    Corpus c(root, "png");
    // Every colour type at each of its bit depths, plain and interlaced, small enough to mutate quickly.
    const std::pair<unsigned, std::vector<unsigned>> pairs[] = {
        {0, {1, 2, 4, 8, 16}}, {2, {8, 16}}, {3, {1, 2, 4, 8}}, {4, {8, 16}}, {6, {8, 16}}};
    for (const auto& [colour, depths] : pairs) {
        for (const unsigned depth : depths) {
            for (const bool interlaced : {false, true}) {
                test::PngSpec s;
                s.w = 9, s.h = 6, s.depth = depth, s.colour = colour, s.interlaced = interlaced;
                if (colour == 3)
                    for (unsigned e = 0; e < 3 * std::min(1u << depth, 20u); e++) s.palette.push_back(uint8_t(e * 11));
                if (colour == 0) s.trns = {0, 1};
                if (colour == 3) s.trns = {0, 128};
                c.add(test::png_bytes(s, test::png_pattern(s), /*idat_size=*/interlaced ? 16 : 1 << 16));
            }
        }
    }
    // Near the edges of what the check accepts: one pixel, trailing bytes, an unknown ancillary chunk, a
    // header that claims more than the data can hold, a cut file.
    test::PngSpec one;
    c.add(test::png_bytes(one, {200, 100, 50}));
    c.add(test::png_bytes(one, {1, 2, 3}) + "after IEND");
    const std::string small = test::png_bytes(one, {9, 9, 9});
    c.add(small.substr(0, 33) + test::png_chunk("teSt", "ancillary") + small.substr(33));
    test::PngSpec big;
    big.w = big.h = 2000;
    const std::string data = test::zlib_compress(std::string(7, '\0'));
    c.add(test::png_signature() + test::png_ihdr(big) + test::png_chunk("IDAT", data) + test::png_chunk("IEND", ""));
    c.add(small.substr(0, small.size() - 5));
}

// ---------------------------------------------------------------------------- idx
std::string idx_bytes(const std::vector<uint32_t>& sizes, const std::vector<uint8_t>& values) {
    std::string s = {0, 0, 8, char(sizes.size())};
    for (const uint32_t v : sizes) {
        for (int shift = 24; shift >= 0; shift -= 8) s += char((v >> shift) & 0xff);
    }
    s.append(values.begin(), values.end());
    return s;
}

std::string gzip(const std::string& bytes) {
    z_stream z{};
    DYAD_CHECK(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               "fuzz_seeds: deflateInit2 failed");
    std::string out(deflateBound(&z, uLong(bytes.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    z.avail_in = uInt(bytes.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    const int r = deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    DYAD_CHECK(r == Z_STREAM_END, "fuzz_seeds: deflate failed");
    return out;
}

void idx_seeds(const fs::path& root) {
    Corpus c(root, "idx");
    const std::string files[] = {
        idx_bytes({2, 3, 4}, pattern(24, 7, 1)),  // images
        idx_bytes({1, 1, 1}, {200}),              // one pixel
        idx_bytes({0, 28, 28}, {}),               // no images
        idx_bytes({4}, {0, 9, 3, 255}),           // labels
        idx_bytes({0}, {}),                       // no labels
        idx_bytes({3, 5, 2}, pattern(29, 3, 0)),  // truncated
        idx_bytes({2}, {1, 2, 3}),                // a trailing byte
    };
    for (const std::string& f : files) {
        c.add(f);
        c.add(gzip(f));
    }
    c.add(gzip(files[0].substr(0, 10)) + gzip(files[0].substr(10)));  // two gzip members
    c.add(gzip(files[3]) + "trailing");                               // ignored after the last member
}

// ---------------------------------------------------------------------------- tiny_imagenet
void tiny_imagenet_seeds(const fs::path& root) {
    Corpus c(root, "tiny_imagenet");
    auto add = [&](const std::string& wnids, const std::string& words, const std::string& val) {
        c.add(wnids + fuzz::kTextSeparator + words + fuzz::kTextSeparator + val);
    };
    const std::string wnids = "n01443537\nn01629819\nn01641577\n";
    const std::string words =
        "n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n"
        "n09999999\tnot listed\nn01641577\t\nno tab here\n";
    const std::string val =
        "val_0.JPEG\tn01443537\t0\t32\t44\t62\nval_1.JPEG\tn01629819\t52\t55\t57\t59\nval_2.JPEG\tn01641577\n";
    add(wnids, words, val);
    add("\r\n  n01443537  \r\n\r\nn01629819\r\n", "n01443537 \t goldfish \r\n", "val_0.JPEG\tn01443537\r\n\r\n");
    add(wnids, "", "");
    add("n01443537\nn01443537\n", words, val);                                    // duplicate wnid
    add("n0144/3537\n", "", "");                                                  // not a wnid
    add("\n \n", "", "");                                                         // no wnids
    add(wnids, words, "val_0.JPEG\tn01443537\t0\t32\t44\n");                      // 5 fields
    add(wnids, words, "val_0.JPEG\tn01443537\t0\tx\t44\t62\n");                   // box not an integer
    add(wnids, words, "val_0.JPEG\tn00000000\n");                                 // unknown wnid
    add(wnids, words, "val_0.JPEG\tn01443537\nval_0.JPEG\tn01629819\n");          // listed twice
    add(wnids, words, "../val_0.JPEG\tn01443537\n..\tn01443537\n");               // not file names
    add(wnids, words, "val_0.JPEG\tn01443537\t99999999999999999999\t0\t0\t0\n");  // out of range
}

// ---------------------------------------------------------------------------- cache
data::Dataset small_set(int64_t n, int64_t h, int64_t w, int64_t ch, int classes, unsigned seed) {
    data::Dataset d;
    d.images = Tensor::from_vector(pattern(size_t(n * h * w * ch), 11, seed), {n, h, w, ch});
    std::vector<int32_t> labels;
    for (int64_t i = 0; i < n; i++) labels.push_back(int32_t(i % classes));
    d.labels = Tensor::from_vector(labels, {n});
    for (int k = 0; k < classes; k++) {
        d.class_ids.push_back("n0" + std::to_string(k));
        d.class_names.push_back("class " + std::to_string(k));
    }
    return d;
}

void cache_seeds(const fs::path& root) {
    Corpus c(root, "cache");
    data::Split split;
    split.train = small_set(3, 2, 2, 3, 2, 1);
    split.val = small_set(1, 2, 2, 3, 2, 5);
    data::write_cache(c.next_path(), split, fuzz::kCacheFingerprint);
    data::Split gray;
    gray.train = small_set(2, 3, 1, 1, 3, 2);  // val undefined
    data::write_cache(c.next_path(), gray, fuzz::kCacheFingerprint);
    data::Split empty;
    empty.train = small_set(0, 4, 4, 3, 1, 0);
    data::write_cache(c.next_path(), empty, fuzz::kCacheFingerprint);
    data::write_cache(c.next_path(), split, "another source");  // rejected by the fingerprint
}

// ---------------------------------------------------------------------------- checkpoint
// A safetensors file put together by hand (for what save_tensors does not write, such as I64).
std::string safetensors(const std::string& json, const std::string& data) {
    std::string header = json;
    header.append((8 - header.size() % 8) % 8, ' ');
    std::string out;
    for (int i = 0; i < 8; i++) out += char((uint64_t(header.size()) >> (8 * i)) & 0xff);
    return out + header + data;
}

void checkpoint_seeds(const fs::path& root) {
    Corpus c(root, "checkpoint");
    manual_seed(7);
    const std::shared_ptr<nn::Sequential> model = fuzz::small_model();
    io::save(c.next_path(), *model);
    io::save(c.next_path(), *model, nullptr, {{"epoch", "3"}, {"note", "seed"}});
    optim::Sgd sgd(model->named_parameters(), optim::SgdOptions{0.1, 0.9});
    io::save(c.next_path(), *model, &sgd, {{"epoch", "4"}});
    const std::vector<float> f = {1.5f, -2.0f, 0.25f, 3.0f, 0.0f, -0.5f};
    io::save_tensors(c.next_path(),
                     {{"a", Tensor::from_vector(f, {2, 3})},
                      {"b", Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2})},
                      {"c", Tensor::from_vector(std::vector<int32_t>{-1, 7, 9}, {3, 1})},
                      {"d", Tensor::from_vector(std::vector<uint8_t>{1, 2, 3, 4}, {2, 2})},
                      {"scalar", Tensor::from_vector(std::vector<float>{4.0f}, {})},
                      {"empty", Tensor::from_vector(std::vector<float>{}, {0, 5})}},
                     {{"format", "test"}});
    io::save_tensors(c.next_path(), {});
    std::string i64;
    for (const int64_t v : {int64_t(5), int64_t(-3), int64_t(1) << 40}) {
        for (int i = 0; i < 8; i++) i64 += char((uint64_t(v) >> (8 * i)) & 0xff);
    }
    c.add(safetensors(R"({"n":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", i64.substr(0, 16)));
    c.add(safetensors(R"({"big":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})", i64));
    c.add(safetensors(R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},)"
                      R"("a":{"dtype":"U8","shape":[1,2],"data_offsets":[0,2]},"__metadata__":{"k":"v"}})",
                      "abcd"));
    // Whitespace and escapes: a \u escape in a name, a surrogate pair and the short escapes in a value.
    c.add(
        safetensors("{\n  \"caf\\u00e9\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [0, 2]},\n"
                    "  \"__metadata__\": {\"s\": \"\\ud83d\\ude42 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}\n}",
                    "ab"));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n  writes the fuzz targets' seed corpora to DIR/<target>/seed_N\n",
                     argv[0]);
        return 2;
    }
    try {
        const fs::path root = argv[1];
        jpeg_seeds(root);
        png_seeds(root);
        idx_seeds(root);
        tiny_imagenet_seeds(root);
        cache_seeds(root);
        checkpoint_seeds(root);
        std::printf("fuzz_seeds: wrote the corpora of jpeg, png, idx, tiny_imagenet, cache, checkpoint to %s\n",
                    argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
