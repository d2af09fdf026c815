// A generated data set in Tiny ImageNet's exact layout: each class is a stripe pattern with its own
// orientation, frequency and colour tint; every image has a random phase, contrast and pixel noise, and
// every 7th image is grayscale (stb_image_write's JPEGs have three components: its chroma is neutral). Used by tests
// and demos in place of the real download.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "dyad/data.h"
#include "dyad/error.h"

namespace dyad::data {

namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;

// splitmix64: a small generator whose output is the same on every platform.
struct Rng {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
    double normal() {                                                               // Box-Muller
        const double u1 = 1.0 - uniform(), u2 = uniform();
        return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
    }
};

uint64_t mix(uint64_t a, uint64_t b) {
    Rng r{a ^ (b * 0xD1B54A32D192ED03ull)};
    return r.next();
}

std::string wnid_of(int k) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "n%08d", k);
    return buf;
}

double frac(double x) { return x - std::floor(x); }

// The class's colour: hues spread by sqrt(2) - 1 (not by the golden ratio, which spreads the orientations:
// frac(0.382 k) = 1 - frac(0.618 k) would tie hue to orientation), saturation in three steps.
void class_colour(int k, double rgb[3]) {
    const double h = frac(0.1 + 0.414213562373095 * k) * 6.0, s = 0.45 + 0.15 * ((k / 4) % 3), v = 0.95;
    const int sector = int(h) % 6;
    const double f = h - std::floor(h);
    const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    const double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; c++) rgb[c] = table[sector][c];
}

// One image of class k (of `classes`), drawn with its own generator.
Image pattern_image(int k, int size, uint64_t image_seed, bool gray) {
    Rng rng{image_seed};
    // Orientation spread by the golden ratio over [0, pi); four frequencies (cycles across the image).
    const double angle = kPi * frac(0.618033988749895 * k) + 0.04 * (rng.uniform() - 0.5);
    const double cycles = 2.0 + 1.5 * double(k % 4);
    const double phase = 2.0 * kPi * rng.uniform();
    const double contrast = 0.6 + 0.4 * rng.uniform();
    const double offset = 0.08 * (rng.uniform() - 0.5);
    double tint[3];
    class_colour(k, tint);
    const double kx = 2.0 * kPi * cycles * std::cos(angle) / size, ky = 2.0 * kPi * cycles * std::sin(angle) / size;

    Image image;
    image.h = image.w = size;
    image.c = gray ? 1 : 3;
    image.pixels.resize(size_t(size) * size_t(size) * size_t(image.c));
    uint8_t* out = image.pixels.data();
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            const double stripe = 0.5 + 0.5 * std::sin(kx * x + ky * y + phase);
            const double level = (0.25 + 0.75 * stripe) * contrast + offset;
            double rgb[3];
            for (int c = 0; c < 3; c++) rgb[c] = tint[c] * level + 0.05 * rng.normal();
            auto to_byte = [](double v) { return uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); };
            if (gray) {
                *out++ = to_byte(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
            } else {
                for (int c = 0; c < 3; c++) *out++ = to_byte(rgb[c]);
            }
        }
    }
    return image;
}

void make_dirs(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    DYAD_CHECK(!ec, "write_generated_tiny_imagenet: cannot create the directory '", dir, "': ", ec.message());
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    DYAD_CHECK(f.is_open(), "write_generated_tiny_imagenet: cannot create '", path, "'");
    f.write(text.data(), std::streamsize(text.size()));
    f.close();
    DYAD_CHECK(!f.fail(), "write_generated_tiny_imagenet: cannot write '", path, "'");
}

struct Job {
    std::string path;
    int label;
    uint64_t seed;
    bool gray;
};

}  // namespace

void write_generated_tiny_imagenet(const std::string& root, int classes, int train_per_class, int val_per_class,
                                   uint64_t seed, int size) {
    DYAD_CHECK(!root.empty(), "write_generated_tiny_imagenet: empty root directory");
    DYAD_CHECK(classes >= 1 && classes <= 100000, "write_generated_tiny_imagenet: '", root, "': classes ", classes,
               " is outside 1..100000");
    DYAD_CHECK(train_per_class >= 0 && val_per_class >= 0, "write_generated_tiny_imagenet: '", root,
               "': negative image counts (train ", train_per_class, ", val ", val_per_class, ")");
    DYAD_CHECK(size >= 8 && size <= 4096, "write_generated_tiny_imagenet: '", root, "': size ", size,
               " is outside 8..4096");

    std::vector<std::string> wnids(static_cast<size_t>(classes));
    for (int k = 0; k < classes; k++) wnids[size_t(k)] = wnid_of(k);

    // wnids.txt in label order; words.txt, like the real one, also names synsets that are not classes.
    make_dirs(root);
    std::string wnid_text, words_text;
    for (const std::string& w : wnids) wnid_text += w + "\n";
    for (int k = 0; k < classes; k++) words_text += wnids[size_t(k)] + "\tpattern " + std::to_string(k) + "\n";
    for (int j = 0; j < 5; j++)
        words_text += "n1" + std::to_string(1000000 + j) + "\tunrelated synset " + std::to_string(j) + ", other\n";
    write_text(root + "/wnids.txt", wnid_text);
    write_text(root + "/words.txt", words_text);

    const std::string box = "\t0\t0\t" + std::to_string(size - 1) + "\t" + std::to_string(size - 1) + "\n";
    std::vector<Job> jobs;
    jobs.reserve(size_t(classes) * size_t(train_per_class + val_per_class));
    for (int k = 0; k < classes; k++) {
        const std::string dir = root + "/train/" + wnids[size_t(k)];
        make_dirs(dir + "/images");
        std::string boxes;
        for (int i = 0; i < train_per_class; i++) {
            const std::string name = wnids[size_t(k)] + "_" + std::to_string(i) + ".JPEG";
            boxes += name + box;
            jobs.push_back({dir + "/images/" + name, k, 0, false});
        }
        write_text(dir + "/" + wnids[size_t(k)] + "_boxes.txt", boxes);
    }

    // Validation: every class val_per_class times, in a seeded random order (as in the real annotations).
    make_dirs(root + "/val/images");
    std::vector<int> val_labels(size_t(classes) * size_t(val_per_class));
    for (size_t j = 0; j < val_labels.size(); j++) val_labels[j] = int(j % size_t(classes));
    Rng shuffle{mix(seed, 0x5641)};
    for (size_t j = val_labels.size(); j > 1; j--) std::swap(val_labels[j - 1], val_labels[shuffle.next() % j]);
    std::string annotations;
    for (size_t j = 0; j < val_labels.size(); j++) {
        const std::string name = "val_" + std::to_string(j) + ".JPEG";
        annotations += name + "\t" + wnids[size_t(val_labels[j])] + box;
        jobs.push_back({root + "/val/images/" + name, val_labels[j], 0, false});
    }
    write_text(root + "/val/val_annotations.txt", annotations);

    for (size_t g = 0; g < jobs.size(); g++) {
        jobs[g].seed = mix(seed, g + 1);
        jobs[g].gray = g % 7 == 6;
    }

    // Images in parallel: each depends only on its own job.
    std::atomic<size_t> next{0};
    std::mutex error_mutex;
    std::exception_ptr error;
    auto work = [&] {
        for (;;) {
            const size_t g = next.fetch_add(1);
            if (g >= jobs.size()) return;
            try {
                const Job& job = jobs[g];
                write_jpeg_file(job.path, pattern_image(job.label, size, job.seed, job.gray), 92);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                next.store(jobs.size());
                return;
            }
        }
    };
    const size_t threads =
        std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), std::max<size_t>(1, jobs.size() / 16));
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; t++) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace dyad::data
