// Tiny ImageNet loading on a generated set in the real layout: labels follow wnids.txt and the validation
// annotations, grayscale files (single-component ones from data/images) come out with three equal channels, limits
// keep every class; broken files are skipped and reported within the tolerance and abort above it (missing and
// dangling files), images of another size (JPEG or PNG) are resized and reported, directories with JPEG names are
// ignored, classes missing from disk or left without images are errors; broken text files are errors naming the
// file (and line); the cache is used when valid and rebuilt when the source changes or the cache is damaged.
#include "support/catch.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/compare.h"
#include "support/png.h"

using namespace dyad;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

constexpr int kClasses = 4, kTrainPerClass = 6, kValPerClass = 2;

// A fresh generated set (4 classes x 6 train, 8 val, 64 x 64) in its own directory.
std::string fresh_set(const std::string& name, uint64_t seed = 7) {
    const std::string d = std::string(DYAD_TEST_OUTPUT_DIR) + "/data_tiny_imagenet/" + name;
    fs::remove_all(d);
    fs::create_directories(d);
    data::write_generated_tiny_imagenet(d, kClasses, kTrainPerClass, kValPerClass, seed);
    return d;
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(text.data(), std::streamsize(text.size()));
    REQUIRE(f.good());
}

std::vector<std::string> lines_of(const std::string& path) {
    std::istringstream in(read_text(path));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(line);
    return out;
}

data::TinyImageNetOptions no_cache() {
    data::TinyImageNetOptions o;
    o.use_cache = false;
    o.threads = 2;
    return o;
}

// The pixels of image i of a data set.
std::vector<uint8_t> image_at(const data::Dataset& d, int64_t i) {
    const Tensor t = d.images.select(0, i).contiguous();
    const uint8_t* p = t.data<uint8_t>();
    return std::vector<uint8_t>(p, p + t.numel());
}

std::vector<int32_t> labels_of(const data::Dataset& d) { return d.labels.contiguous().to_vector<int32_t>(); }

// Number of components in a JPEG's frame header (walking the segments), or -1.
int frame_components(const std::string& path) {
    const std::string b = read_text(path);
    size_t p = 2;
    while (p + 10 <= b.size() && uint8_t(b[p]) == 0xFF) {
        const uint8_t m = uint8_t(b[p + 1]);
        if (m == 0xC0 || m == 0xC1 || m == 0xC2) return uint8_t(b[p + 9]);
        p += 2 + ((size_t(uint8_t(b[p + 2])) << 8) | uint8_t(b[p + 3]));
    }
    return -1;
}

void require_same_split(const data::Split& a, const data::Split& b) {
    test::require_identical(a.train.images, b.train.images);
    test::require_identical(a.train.labels, b.train.labels);
    test::require_identical(a.val.images, b.val.images);
    test::require_identical(a.val.labels, b.val.labels);
    CHECK(a.train.class_ids == b.train.class_ids);
    CHECK(a.train.class_names == b.train.class_names);
    CHECK(a.val.class_ids == b.val.class_ids);
}

}  // namespace

TEST_CASE("tiny imagenet labels follow wnids.txt and the val annotations", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("labels");
    // Reverse the label order: label k must now be the class listed k-th.
    std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    REQUIRE(wnids.size() == size_t(kClasses));
    std::reverse(wnids.begin(), wnids.end());
    std::string text;
    for (const std::string& w : wnids) text += w + "\n";
    write_text(root + "/wnids.txt", text);

    const data::Split s = data::load_tiny_imagenet(root, no_cache());
    REQUIRE(s.train.size() == kClasses * kTrainPerClass);
    REQUIRE(s.val.size() == kClasses * kValPerClass);
    REQUIRE(s.train.images.shape() == Shape{kClasses * kTrainPerClass, 64, 64, 3});
    CHECK(s.train.class_ids == wnids);
    CHECK(s.val.class_ids == wnids);
    REQUIRE(s.train.class_names.size() == size_t(kClasses));
    // Names come from words.txt (the generator names class n0000000k "pattern k").
    for (size_t k = 0; k < wnids.size(); k++)
        CHECK(s.train.class_names[k] == "pattern " + std::to_string(std::stoi(wnids[k].substr(1))));

    // Every train image of label k is one of the files in train/<wnids[k]>/images, each file once.
    std::map<std::vector<uint8_t>, int32_t> file_label;
    for (size_t k = 0; k < wnids.size(); k++)
        for (const auto& e : fs::directory_iterator(root + "/train/" + wnids[k] + "/images"))
            file_label[data::decode_jpeg_file(e.path().string(), 3).pixels] = int32_t(k);
    REQUIRE(file_label.size() == size_t(kClasses * kTrainPerClass));
    const std::vector<int32_t> train_labels = labels_of(s.train);
    std::set<std::vector<uint8_t>> seen;
    for (int64_t i = 0; i < s.train.size(); i++) {
        const std::vector<uint8_t> px = image_at(s.train, i);
        const auto it = file_label.find(px);
        REQUIRE(it != file_label.end());
        CHECK(it->second == train_labels[size_t(i)]);
        seen.insert(px);
    }
    CHECK(seen.size() == file_label.size());

    // Val image j is the file on annotation line j, labelled by its wnid's position in wnids.txt.
    const std::vector<std::string> ann = lines_of(root + "/val/val_annotations.txt");
    REQUIRE(ann.size() == size_t(kClasses * kValPerClass));
    const std::vector<int32_t> val_labels = labels_of(s.val);
    for (size_t j = 0; j < ann.size(); j++) {
        const std::string file = ann[j].substr(0, ann[j].find('\t'));
        const std::string wnid = ann[j].substr(file.size() + 1, ann[j].find('\t', file.size() + 1) - file.size() - 1);
        const int32_t expected = int32_t(std::find(wnids.begin(), wnids.end(), wnid) - wnids.begin());
        CHECK(val_labels[j] == expected);
        const std::string path = root + "/val/images/" + file;
        CHECK(image_at(s.val, int64_t(j)) == data::decode_jpeg_file(path, 3).pixels);
    }
}

TEST_CASE("tiny imagenet grayscale train images have three equal channels", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("gray");
    // Single-component JPEGs, as some of Tiny ImageNet's are, in place of the first image of two classes (the
    // library writes three components always; data/images/README.md).
    const std::string fixture = std::string(DYAD_TEST_IMAGES_DIR) + "/gray_64x64.jpg";
    REQUIRE(frame_components(fixture) == 1);
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    for (const int k : {0, 2}) {
        const std::string name = wnids[size_t(k)] + "_0.JPEG";
        fs::copy_file(fixture, root + "/train/" + wnids[size_t(k)] + "/images/" + name,
                      fs::copy_options::overwrite_existing);
    }
    const data::Split s = data::load_tiny_imagenet(root, no_cache());
    const std::vector<uint8_t> gray = data::decode_jpeg_file(fixture, 1).pixels;
    // The single-component files come out as three copies of their one channel; the generated grayscale
    // images (every 7th) with three equal channels too.
    int single = 0, equal = 0;
    for (int64_t i = 0; i < s.train.size(); i++) {
        const std::vector<uint8_t> px = image_at(s.train, i);
        bool same = true, from_fixture = true;
        for (size_t p = 0; p < px.size(); p += 3) {
            same = same && px[p] == px[p + 1] && px[p] == px[p + 2];
            from_fixture = from_fixture && px[p] == gray[p / 3];
        }
        equal += same;
        single += same && from_fixture;
    }
    CHECK(single == 2);
    CHECK(equal >= 3);
}

TEST_CASE("tiny imagenet limits keep every class", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("limits");
    data::TinyImageNetOptions o = no_cache();
    o.limit_train = 6;
    o.limit_val = 3;
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, o, &report);
    REQUIRE(s.train.size() == 6);
    REQUIRE(s.val.size() == 3);
    CHECK(report.decoded == 9);
    CHECK_FALSE(report.from_cache);
    const std::vector<int32_t> labels = labels_of(s.train);
    CHECK(std::set<int32_t>(labels.begin(), labels.end()).size() == size_t(kClasses));
    // Val keeps the annotation order: the first three lines.
    const data::Split all = data::load_tiny_imagenet(root, no_cache());
    for (int64_t j = 0; j < 3; j++) CHECK(image_at(s.val, j) == image_at(all.val, j));
    const std::vector<int32_t> all_val = labels_of(all.val);
    CHECK(labels_of(s.val) == std::vector<int32_t>(all_val.begin(), all_val.begin() + 3));
}

TEST_CASE("tiny imagenet skips broken files within the tolerance and aborts above it", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("damaged");
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    const std::string zero = root + "/train/" + wnids[0] + "/images/" + wnids[0] + "_0.JPEG";
    const std::string cut = root + "/train/" + wnids[1] + "/images/" + wnids[1] + "_1.JPEG";
    const std::string text = root + "/train/" + wnids[2] + "/images/notes.JPEG";
    write_text(zero, "");
    const std::string whole = read_text(cut);
    write_text(cut, whole.substr(0, whole.size() / 2));
    write_text(text, "not an image\n");

    // 3 of 25 train files (12%) fail.
    data::TinyImageNetOptions o = no_cache();
    o.max_failure_fraction = 0.2;
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, o, &report);
    CHECK(s.train.size() == 22);
    CHECK(s.train.labels.size(0) == 22);
    CHECK(s.val.size() == 8);
    CHECK(report.decoded == 30);
    REQUIRE(report.failures.size() == 3);
    std::set<std::string> failed;
    for (const auto& [path, why] : report.failures) {
        failed.insert(path);
        CHECK_FALSE(why.empty());
    }
    CHECK(failed == std::set<std::string>{zero, cut, text});
    // The skipped files are missing from their classes only.
    const std::vector<int32_t> labels = labels_of(s.train);
    CHECK(std::count(labels.begin(), labels.end(), 0) == kTrainPerClass - 1);
    CHECK(std::count(labels.begin(), labels.end(), 1) == kTrainPerClass - 1);
    CHECK(std::count(labels.begin(), labels.end(), 2) == kTrainPerClass);
    CHECK(std::count(labels.begin(), labels.end(), 3) == kTrainPerClass);
    const std::string summary = report.summary();
    CHECK_THAT(summary, Contains(zero));
    CHECK_THAT(summary, Contains(cut));
    CHECK_THAT(summary, Contains(text));

    // Above the tolerance: an error with the count and a failed file.
    o.max_failure_fraction = 0.1;
    try {
        (void)data::load_tiny_imagenet(root, o);
        FAIL("no error");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains("3 of 25"));
        CHECK((msg.find(zero) != std::string::npos || msg.find(cut) != std::string::npos ||
               msg.find(text) != std::string::npos));
    }
}

TEST_CASE("tiny imagenet text file errors name the file", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("text_errors");
    // An unknown wnid on line 3 of the annotations.
    const std::string ann = root + "/val/val_annotations.txt";
    std::vector<std::string> lines = lines_of(ann);
    lines[2] = lines[2].substr(0, lines[2].find('\t')) + "\tn99999999\t0\t0\t63\t63";
    std::string text;
    for (const std::string& l : lines) text += l + "\n";
    write_text(ann, text);
    try {
        (void)data::load_tiny_imagenet(root, no_cache());
        FAIL("no error");
    } catch (const Error& e) {
        const std::string msg = e.what();
        CHECK_THAT(msg, Contains(ann));
        CHECK_THAT(msg, Contains("line 3"));
        CHECK_THAT(msg, Contains("n99999999"));
    }
    // A malformed line.
    write_text(ann, lines[0] + "\n" + lines[1] + "\nval_9.JPEG\n");
    try {
        (void)data::load_tiny_imagenet(root, no_cache());
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(ann));
        CHECK_THAT(std::string(e.what()), Contains("line 3"));
    }
    // Missing and empty wnids.txt.
    const std::string wnids = root + "/wnids.txt";
    fs::remove(wnids);
    try {
        (void)data::load_tiny_imagenet(root, no_cache());
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(wnids));
    }
    write_text(wnids, "\n\n");
    try {
        (void)data::load_tiny_imagenet(root, no_cache());
        FAIL("no error");
    } catch (const Error& e) {
        CHECK_THAT(std::string(e.what()), Contains(wnids));
    }
    CHECK_THROWS_AS(data::load_tiny_imagenet(root + "/no_such_dir", no_cache()), Error);
}

TEST_CASE("tiny imagenet words.txt is optional", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("no_words");
    fs::remove(root + "/words.txt");
    const data::Split s = data::load_tiny_imagenet(root, no_cache());
    CHECK(s.train.class_names == s.train.class_ids);
    CHECK(s.train.size() == kClasses * kTrainPerClass);
}

TEST_CASE("tiny imagenet cache round trip and rebuilds", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("cache");
    data::TinyImageNetOptions o;
    o.threads = 2;
    data::LoadReport r1, r2;
    const data::Split first = data::load_tiny_imagenet(root, o, &r1);
    CHECK_FALSE(r1.from_cache);
    CHECK(r1.decoded == kClasses * (kTrainPerClass + kValPerClass));
    const std::string cache = root + "/dyad-cache.bin";
    REQUIRE(fs::exists(cache));

    const data::Split second = data::load_tiny_imagenet(root, o, &r2);
    CHECK(r2.from_cache);
    CHECK(r2.decoded == 0);
    require_same_split(first, second);

    // Other limits: another fingerprint, so the cache is rebuilt for them (and then again for no limits).
    data::TinyImageNetOptions limited = o;
    limited.limit_train = 5;
    data::LoadReport r3;
    CHECK(data::load_tiny_imagenet(root, limited, &r3).train.size() == 5);
    CHECK_FALSE(r3.from_cache);
    CHECK(data::load_tiny_imagenet(root, limited, &r3).train.size() == 5);
    CHECK(r3.from_cache);
    (void)data::load_tiny_imagenet(root, o, &r3);
    CHECK_FALSE(r3.from_cache);

    // A damaged cache (one byte flipped in the pixels) is rebuilt, with the same result.
    (void)data::load_tiny_imagenet(root, o, &r3);
    CHECK(r3.from_cache);
    {
        std::fstream f(cache, std::ios::in | std::ios::out | std::ios::binary);
        const auto size = fs::file_size(cache);
        f.seekg(std::streamoff(size / 2));
        char c = 0;
        f.read(&c, 1);
        c = char(c ^ 0x10);
        f.seekp(std::streamoff(size / 2));
        f.write(&c, 1);
        REQUIRE(f.good());
    }
    data::LoadReport r4;
    const data::Split rebuilt = data::load_tiny_imagenet(root, o, &r4);
    CHECK_FALSE(r4.from_cache);
    require_same_split(first, rebuilt);
}

TEST_CASE("tiny imagenet cache is rebuilt when the source changes", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("stale");
    data::TinyImageNetOptions o;
    o.threads = 2;
    data::LoadReport r;
    const data::Split first = data::load_tiny_imagenet(root, o, &r);
    CHECK_FALSE(r.from_cache);
    (void)data::load_tiny_imagenet(root, o, &r);
    CHECK(r.from_cache);

    // A touched file (only its modification time changes).
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    const std::string file = root + "/train/" + wnids[1] + "/images/" + wnids[1] + "_2.JPEG";
    fs::last_write_time(file, fs::last_write_time(file) + std::chrono::seconds(5));
    const data::Split touched = data::load_tiny_imagenet(root, o, &r);
    CHECK_FALSE(r.from_cache);
    require_same_split(first, touched);
    (void)data::load_tiny_imagenet(root, o, &r);
    CHECK(r.from_cache);

    // A new file.
    fs::copy_file(file, root + "/train/" + wnids[1] + "/images/" + wnids[1] + "_extra.JPEG");
    const data::Split added = data::load_tiny_imagenet(root, o, &r);
    CHECK_FALSE(r.from_cache);
    CHECK(added.train.size() == first.train.size() + 1);

    // A cache that cannot be written: a warning, and the data all the same.
    data::TinyImageNetOptions unwritable = o;
    unwritable.cache_path = root + "/no_such_dir/cache.bin";
    const data::Split s = data::load_tiny_imagenet(root, unwritable, &r);
    CHECK_FALSE(r.from_cache);
    CHECK(s.train.size() == added.train.size());
}

TEST_CASE("tiny imagenet class folders follow wnids.txt", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("class_folders");
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    // A folder that wnids.txt does not list (with a valid image) is ignored.
    const std::string extra = root + "/train/n99999999/images";
    fs::create_directories(extra);
    fs::copy_file(root + "/train/" + wnids[0] + "/images/" + wnids[0] + "_0.JPEG", extra + "/n99999999_0.JPEG");
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, no_cache(), &report);
    CHECK(s.train.size() == kClasses * kTrainPerClass);
    CHECK(s.train.class_ids == wnids);
    CHECK(report.failures.empty());
    const std::vector<int32_t> labels = labels_of(s.train);
    CHECK(*std::max_element(labels.begin(), labels.end()) == kClasses - 1);

    // A listed class without a folder is an error naming it.
    const std::string missing = root + "/train/" + wnids[2];
    fs::remove_all(missing);
    try {
        (void)data::load_tiny_imagenet(root, no_cache());
        FAIL("no error");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains(missing + "/images"));
        CHECK_THAT(msg, Contains(wnids[2]));
    }
}

TEST_CASE("tiny imagenet resizes images of another size, skips missing files and ignores directories",
          "[data][tiny_imagenet]") {
    const std::string root = fresh_set("odd_files");
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    // A directory with a JPEG name (holding a valid JPEG) inside a train images folder: not a file of the set.
    const std::string dir_jpeg = root + "/train/" + wnids[0] + "/images/x.JPEG";
    fs::create_directories(dir_jpeg);
    fs::copy_file(root + "/train/" + wnids[0] + "/images/" + wnids[0] + "_0.JPEG", dir_jpeg + "/inner.JPEG");
    // A dangling symbolic link with a JPEG name.
    const std::string dangling = root + "/train/" + wnids[1] + "/images/y.JPEG";
    fs::create_symlink(root + "/no_such_target.JPEG", dangling);
    // A valid 32x32 JPEG among the 64x64 ones (from a generated set of that size).
    const std::string small_root = root + "/small";
    data::write_generated_tiny_imagenet(small_root, 1, 1, 0, 3, 32);
    const std::string small = root + "/train/" + wnids[2] + "/images/" + wnids[2] + "_0.JPEG";
    fs::copy_file(small_root + "/train/n00000000/images/n00000000_0.JPEG", small, fs::copy_options::overwrite_existing);
    // A val file listed in the annotations but missing on disk, and one that is a directory.
    const std::vector<std::string> ann = lines_of(root + "/val/val_annotations.txt");
    const std::string gone = root + "/val/images/" + ann[3].substr(0, ann[3].find('\t'));
    const std::string val_dir = root + "/val/images/" + ann[5].substr(0, ann[5].find('\t'));
    REQUIRE(fs::remove(gone));
    REQUIRE(fs::remove(val_dir));
    fs::create_directory(val_dir);

    data::TinyImageNetOptions o = no_cache();
    o.max_failure_fraction = 0.25;
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, o, &report);
    // Train: 24 files and the link, of which the link fails; val: 8, of which 2 fail.
    CHECK(s.train.size() == kClasses * kTrainPerClass);
    CHECK(s.val.size() == kClasses * kValPerClass - 2);
    CHECK(report.decoded == s.train.size() + s.val.size());
    std::map<std::string, std::string> why(report.failures.begin(), report.failures.end());
    CHECK(why.size() == report.failures.size());
    CHECK(why.size() == 3);
    CHECK(why.count(dir_jpeg) == 0);
    CHECK(why.count(dir_jpeg + "/inner.JPEG") == 0);
    REQUIRE(why.count(dangling) == 1);
    CHECK_THAT(why[dangling], Contains("cannot open"));
    // The 32x32 image is scaled up to 64x64, as predict would, and reported.
    CHECK(why.count(small) == 0);
    REQUIRE(report.resized.size() == 1);
    CHECK(report.resized[0].first == small);
    CHECK(report.resized[0].second == "32x32");
    const data::Image up = data::resize_and_crop(data::decode_image_file(small), 64);
    int found = 0;
    for (int64_t i = 0; i < s.train.size(); i++) found += image_at(s.train, i) == up.pixels;
    CHECK(found == 1);
    REQUIRE(why.count(gone) == 1);
    CHECK_THAT(why[gone], Contains("cannot open"));
    REQUIRE(why.count(val_dir) == 1);
    CHECK_THAT(why[val_dir], Contains("not a regular file"));
    // The skipped files are missing from their own classes only; the directory added nothing.
    const std::vector<int32_t> labels = labels_of(s.train);
    CHECK(std::count(labels.begin(), labels.end(), 0) == kTrainPerClass);
    CHECK(std::count(labels.begin(), labels.end(), 1) == kTrainPerClass);
    CHECK(std::count(labels.begin(), labels.end(), 2) == kTrainPerClass);
    CHECK(std::count(labels.begin(), labels.end(), 3) == kTrainPerClass);
    const std::string summary = report.summary();
    CHECK_THAT(summary, Contains("1 resized to 64x64"));
    CHECK_THAT(summary, Contains("resized '" + small + "' from 32x32"));
    CHECK_THAT(summary, Contains("3 files skipped"));
    CHECK_THAT(summary, Contains(dangling));
    CHECK_THAT(summary, Contains(gone));
}

TEST_CASE("tiny imagenet classes without train images are errors", "[data][tiny_imagenet]") {
    const std::string root = fresh_set("empty_classes");
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    data::TinyImageNetOptions o = no_cache();
    o.max_failure_fraction = 0.3;

    // Every file of one class is broken (6 of 24 train files, within the tolerance): an error naming the
    // class, since no limit cuts its files.
    const std::string broken = root + "/train/" + wnids[3] + "/images";
    for (int i = 0; i < kTrainPerClass; i++)
        write_text(broken + "/" + wnids[3] + "_" + std::to_string(i) + ".JPEG", "not an image\n");
    try {
        (void)data::load_tiny_imagenet(root, o);
        FAIL("no error");
    } catch (const Error& e) {
        const std::string msg = e.what();
        INFO(msg);
        CHECK_THAT(msg, Contains("class '" + wnids[3] + "'"));
        CHECK_THAT(msg, Contains("no train image"));
    }
    // A limit that takes every file is no limit.
    o.limit_train = kClasses * kTrainPerClass;
    CHECK_THROWS_AS(data::load_tiny_imagenet(root, o), Error);
    // A limit that cuts the list may leave a class empty: 3 files of each class, the broken class's skipped.
    o.limit_train = kClasses * 3;
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, o, &report);
    CHECK(s.train.size() == (kClasses - 1) * 3);
    CHECK(report.failures.size() == 3);
    const std::vector<int32_t> labels = labels_of(s.train);
    CHECK(std::count(labels.begin(), labels.end(), 3) == 0);

    // A class folder without JPEG files (a text file and a directory with a JPEG name do not count) is an
    // error naming the folder, with or without a limit.
    const std::string empty = root + "/train/" + wnids[1] + "/images";
    for (int i = 0; i < kTrainPerClass; i++) fs::remove(empty + "/" + wnids[1] + "_" + std::to_string(i) + ".JPEG");
    write_text(empty + "/notes.txt", "no images here\n");
    fs::create_directory(empty + "/x.JPEG");
    for (const int64_t limit : {int64_t(0), int64_t(5)}) {
        o.limit_train = limit;
        try {
            (void)data::load_tiny_imagenet(root, o);
            FAIL("no error with limit_train " << limit);
        } catch (const Error& e) {
            const std::string msg = e.what();
            INFO(msg);
            CHECK_THAT(msg, Contains("'" + empty + "'"));
            CHECK_THAT(msg, Contains("no JPEG or PNG files"));
        }
    }
}

TEST_CASE("generated data set: the same seed writes the same bytes", "[data][tiny_imagenet]") {
    // Written by several threads each time; every file depends on the seed and its own index only.
    const std::string a = fresh_set("seed_a", 11), b = fresh_set("seed_b", 11), c = fresh_set("seed_c", 12);
    size_t files = 0, differ = 0;
    for (const auto& e : fs::recursive_directory_iterator(a)) {
        if (!e.is_regular_file()) continue;
        const std::string rel = fs::relative(e.path(), a).string();
        INFO(rel);
        REQUIRE(read_text(b + "/" + rel) == read_text(e.path().string()));
        if (rel.find(".JPEG") != std::string::npos) differ += read_text(c + "/" + rel) != read_text(e.path().string());
        files++;
    }
    CHECK(files == size_t(kClasses * (kTrainPerClass + kValPerClass) + kClasses + 3));  // + boxes, wnids, words, val
    CHECK(differ == size_t(kClasses * (kTrainPerClass + kValPerClass)));                // another seed: other images
}

TEST_CASE("tiny imagenet reads PNG files too, checked like the JPEGs", "[data][tiny_imagenet][png]") {
    const std::string root = fresh_set("png");
    const std::vector<std::string> wnids = lines_of(root + "/wnids.txt");
    test::PngSpec spec;
    spec.w = spec.h = 64;
    const std::vector<uint16_t> samples = test::png_pattern(spec);
    const std::vector<uint8_t> pixels(samples.begin(), samples.end());  // 8-bit RGB: the pixels themselves
    const std::string png = test::png_bytes(spec, samples);
    // A train image replaced by a .png file, a val file holding PNG bytes under its .JPEG name, and a cut
    // .png file, skipped with its reason.
    const std::string images = root + "/train/" + wnids[1] + "/images/";
    fs::remove(images + wnids[1] + "_0.JPEG");
    write_text(images + wnids[1] + "_0.png", png);
    write_text(images + wnids[1] + "_9.png", png.substr(0, 50));
    write_text(root + "/val/images/val_0.JPEG", png);
    // An RGBA PNG of 96x72 (alpha dropped, resized to 64x64) in place of another val file.
    test::PngSpec rgba;
    rgba.w = 96, rgba.h = 72, rgba.colour = 6;
    const std::string rgba_png = test::png_bytes(rgba, test::png_pattern(rgba));
    write_text(root + "/val/images/val_1.JPEG", rgba_png);
    const data::Image rgba_64 = data::resize_and_crop(
        data::decode_image(reinterpret_cast<const uint8_t*>(rgba_png.data()), rgba_png.size(), 3), 64);
    data::TinyImageNetOptions o = no_cache();
    o.max_failure_fraction = 0.1;
    data::LoadReport report;
    const data::Split s = data::load_tiny_imagenet(root, o, &report);
    CHECK(s.train.size() == kClasses * kTrainPerClass);
    int found = 0;
    for (int64_t i = 0; i < s.train.size(); i++) found += image_at(s.train, i) == pixels;
    CHECK(found == 1);
    CHECK(image_at(s.val, 0) == pixels);
    CHECK(image_at(s.val, 1) == rgba_64.pixels);
    REQUIRE(report.resized.size() == 1);
    CHECK(report.resized[0].first == root + "/val/images/val_1.JPEG");
    CHECK(report.resized[0].second == "96x72");
    REQUIRE(report.failures.size() == 1);
    CHECK(report.failures[0].first == images + wnids[1] + "_9.png");
    CHECK_THAT(report.failures[0].second, Contains("not a valid PNG: truncated"));
}
