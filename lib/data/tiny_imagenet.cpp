// Tiny ImageNet from an unzipped tiny-imagenet-200 directory: the text files (wnids.txt, words.txt,
// val/val_annotations.txt) are parsed strictly, the images (JPEG, or PNG) are checked and decoded by a pool
// of threads into one preallocated uint8 tensor per split, broken files are skipped up to a tolerance, and
// the result is kept in a cache file keyed by a fingerprint of every source file's name, size and
// modification time.
//
// Order: the train split takes the classes' files (each class's sorted by name) round-robin, so that any
// prefix - a limit_train cap, or Dataset::head() - holds every class about equally; val keeps the order of
// val_annotations.txt.
//
// Every class listed in wnids.txt needs at least one image in its train folder, and (unless a limit cuts the
// train list) at least one that decodes: a class without train images is an error, never silently empty.
// Entries of an images folder that are directories are not files of the set and are passed over, whatever
// their names; any other entry named .JPEG, .jpg or .png (a dangling link included) is a file, and one that
// cannot be decoded is skipped and reported with the reason. An image of another size than 64x64 is resized
// (shorter side) and centre-cropped, as predict treats a photo, and reported.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dyad/data.h"
#include "dyad/error.h"
#include "lib/data/parse.h"

namespace dyad::data {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kSide = 64;      // Tiny ImageNet's images are 64 x 64 x 3
constexpr int kShownFailures = 3;  // failures quoted in the error when too many files fail

std::string trim(const std::string& s) {
    const char* ws = " \t\r\n\f\v";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        const size_t tab = line.find('\t', start);
        out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
        if (tab == std::string::npos) return out;
        start = tab + 1;
    }
}

bool has_image_extension(const std::string& name) {
    const size_t dot = name.find_last_of('.');
    if (dot == std::string::npos) return false;
    std::string ext = name.substr(dot + 1);
    for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
    return ext == "jpeg" || ext == "jpg" || ext == "png";
}

bool parse_int(const std::string& s, long* v) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    *v = std::strtol(s.c_str(), &end, 10);
    return errno == 0 && end == s.c_str() + s.size();
}

// FNV-1a 64 over the fingerprint's description of the source files.
struct Fnv {
    uint64_t h = 0xcbf29ce484222325ull;
    void add(const std::string& s) {
        for (const unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull;  // separator
    }
};

// Size and modification time (ns) of a file, or "missing".
struct FileStamp {
    bool exists = false;
    int64_t size = 0, mtime_ns = 0;
};
FileStamp stamp(const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        s.exists = true;
        s.size = int64_t(st.st_size);
        s.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + int64_t(st.st_mtim.tv_nsec);
    }
    return s;
}

struct Source {
    std::string path;
    int32_t label = 0;
};

// The part of an error message after "'path': " (the report names the path separately).
std::string reason_of(const std::string& what, const std::string& path) {
    const std::string key = "'" + path + "': ";
    const size_t at = what.find(key);
    return at == std::string::npos ? what : what.substr(at + key.size());
}

// The whole text of a file; false when it cannot be opened. A read error leaves *bad set.
bool read_text(const std::string& path, std::string* text, bool* bad) {
    std::ifstream f(path, std::ios::binary);
    if (!f.is_open()) return false;
    text->clear();
    char buf[1 << 16];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) text->append(buf, size_t(f.gcount()));
    *bad = f.bad();
    return true;
}

}  // namespace

namespace detail {

Wnids parse_wnids(const std::string& text, const std::string& path) {
    const std::string op = "load_tiny_imagenet";
    Wnids out;
    std::istringstream f(text);
    std::string line;
    for (int64_t ln = 1; std::getline(f, line); ln++) {
        const std::string w = trim(line);
        if (w.empty()) continue;
        DYAD_CHECK(w.find_first_of(" \t/") == std::string::npos, op, ": '", path, "' line ", ln, ": '", w,
                   "' is not a wnid");
        DYAD_CHECK(out.label_of.emplace(w, int32_t(out.ids.size())).second, op, ": '", path, "' line ", ln,
                   ": duplicate wnid '", w, "'");
        out.ids.push_back(w);
    }
    DYAD_CHECK(!out.ids.empty(), op, ": '", path, "' lists no wnids");
    return out;
}

std::vector<std::string> parse_words(const std::string& text, const Wnids& wnids) {
    std::vector<std::string> names = wnids.ids;
    std::istringstream f(text);
    std::string line;
    while (std::getline(f, line)) {
        const size_t tab = line.find('\t');
        if (tab == std::string::npos) continue;
        const auto it = wnids.label_of.find(trim(line.substr(0, tab)));
        if (it == wnids.label_of.end()) continue;
        const std::string name = trim(line.substr(tab + 1));
        if (!name.empty()) names[size_t(it->second)] = name;
    }
    return names;
}

std::vector<ValEntry> parse_val_annotations(const std::string& text, const std::string& path, const Wnids& wnids,
                                            const std::string& wnids_path) {
    const std::string op = "load_tiny_imagenet";
    std::vector<ValEntry> out;
    std::unordered_set<std::string> seen;
    std::istringstream f(text);
    std::string line;
    for (int64_t ln = 1; std::getline(f, line); ln++) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (trim(line).empty()) continue;
        std::vector<std::string> fields = split_tabs(line);
        for (std::string& s : fields) s = trim(s);
        DYAD_CHECK(fields.size() == 2 || fields.size() == 6, op, ": '", path, "' line ", ln, ": malformed line '", line,
                   "' (", fields.size(),
                   " tab-separated fields; expected file, wnid and optionally a box x0 y0 x1 y1)");
        const std::string& file = fields[0];
        DYAD_CHECK(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos, op, ": '", path,
                   "' line ", ln, ": '", file, "' is not a file name");
        for (size_t i = 2; i < fields.size(); i++) {
            long v = 0;
            DYAD_CHECK(parse_int(fields[i], &v), op, ": '", path, "' line ", ln, ": box field '", fields[i],
                       "' is not an integer");
        }
        const auto it = wnids.label_of.find(fields[1]);
        DYAD_CHECK(it != wnids.label_of.end(), op, ": '", path, "' line ", ln, ": unknown wnid '", fields[1],
                   "' (not in '", wnids_path, "')");
        DYAD_CHECK(seen.insert(file).second, op, ": '", path, "' line ", ln, ": '", file, "' is listed twice");
        out.push_back({file, it->second});
    }
    return out;
}

}  // namespace detail

std::string LoadReport::summary() const {
    std::ostringstream os;
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.2f", seconds);
    if (from_cache) {
        os << "read from the cache in " << secs << " s";
    } else {
        os << "decoded " << decoded << " images in " << secs << " s";
    }
    if (!resized.empty())
        os << ", " << resized.size() << " resized to " << kSide << "x" << kSide
           << " (shorter side scaled, centre cropped)";
    if (!failures.empty()) os << ", " << failures.size() << " file" << (failures.size() == 1 ? "" : "s") << " skipped";
    const size_t shown_resized = std::min<size_t>(resized.size(), 5);
    for (size_t i = 0; i < shown_resized; i++)
        os << "\n  resized '" << resized[i].first << "' from " << resized[i].second;
    if (resized.size() > shown_resized) os << "\n  ... and " << resized.size() - shown_resized << " more resized";
    const size_t shown = std::min<size_t>(failures.size(), 20);
    for (size_t i = 0; i < shown; i++) os << "\n  skipped '" << failures[i].first << "': " << failures[i].second;
    if (failures.size() > shown) os << "\n  ... and " << failures.size() - shown << " more";
    return os.str();
}

Split load_tiny_imagenet(const std::string& root, const TinyImageNetOptions& options, LoadReport* report) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string op = "load_tiny_imagenet";
    DYAD_CHECK(options.limit_train >= 0 && options.limit_val >= 0, op, ": '", root, "': negative limits (train ",
               options.limit_train, ", val ", options.limit_val, ")");
    DYAD_CHECK(options.max_failure_fraction >= 0 && options.max_failure_fraction <= 1, op, ": '", root,
               "': max_failure_fraction ", options.max_failure_fraction, " is outside [0, 1]");
    {
        std::error_code ec;
        DYAD_CHECK(fs::is_directory(root, ec), op, ": '", root, "' is not a directory (",
                   ec ? ec.message() : std::string(fs::exists(root, ec) ? "not a directory" : "does not exist"), ")");
    }

    // ------------------------------------------------------------------------ wnids.txt: the label order
    const std::string wnids_path = root + "/wnids.txt";
    detail::Wnids wnid_list;
    {
        std::string text;
        bool bad = false;
        DYAD_CHECK(read_text(wnids_path, &text, &bad), op, ": cannot open '", wnids_path,
                   "' (the class list of Tiny ImageNet)");
        wnid_list = detail::parse_wnids(text, wnids_path);
        DYAD_CHECK(!bad, op, ": read error in '", wnids_path, "'");
    }
    const std::vector<std::string>& wnids = wnid_list.ids;

    // ------------------------------------------------------------------------ words.txt: names (optional)
    const std::string words_path = root + "/words.txt";
    std::vector<std::string> names = wnids;
    {
        std::string text;
        bool bad = false;
        if (read_text(words_path, &text, &bad)) names = detail::parse_words(text, wnid_list);
    }

    // ------------------------------------------------------------------------ train files
    std::vector<std::vector<std::string>> per_class(wnids.size());
    for (size_t k = 0; k < wnids.size(); k++) {
        const std::string dir = root + "/train/" + wnids[k] + "/images";
        std::error_code ec;
        fs::directory_iterator it(dir, ec);
        DYAD_CHECK(!ec, op, ": cannot list '", dir, "' (wnids.txt lists '", wnids[k], "'): ", ec.message());
        for (; it != fs::directory_iterator(); it.increment(ec)) {
            const std::string name = it->path().filename().string();
            std::error_code dir_ec;
            if (!has_image_extension(name) || it->is_directory(dir_ec)) continue;
            per_class[k].push_back(dir + "/" + name);
        }
        DYAD_CHECK(!ec, op, ": error while listing '", dir, "': ", ec.message());
        DYAD_CHECK(!per_class[k].empty(), op, ": '", dir, "' holds no JPEG or PNG files (wnids.txt lists '", wnids[k],
                   "', so the class would have no train images)");
        std::sort(per_class[k].begin(), per_class[k].end());
    }
    std::vector<Source> train;
    for (size_t i = 0;; i++) {
        bool any = false;
        for (size_t k = 0; k < wnids.size(); k++) {
            if (i >= per_class[k].size()) continue;
            train.push_back({per_class[k][i], int32_t(k)});
            any = true;
        }
        if (!any) break;
    }

    // ------------------------------------------------------------------------ val annotations
    const std::string ann_path = root + "/val/val_annotations.txt";
    std::vector<Source> val;
    {
        std::string text;
        bool bad = false;
        DYAD_CHECK(read_text(ann_path, &text, &bad), op, ": cannot open '", ann_path, "' (the validation labels)");
        for (const detail::ValEntry& e : detail::parse_val_annotations(text, ann_path, wnid_list, wnids_path))
            val.push_back({root + "/val/images/" + e.file, e.label});
        DYAD_CHECK(!bad, op, ": read error in '", ann_path, "'");
    }

    // ------------------------------------------------------------------------ fingerprint
    // Every source file (before the limits: a new file changes which ones are taken) with its size and
    // modification time, plus everything else that shapes the result.
    Fnv fnv;
    int64_t total_bytes = 0;
    auto add_file = [&](const std::string& path) {
        const FileStamp s = stamp(path);
        fnv.add(path.substr(root.size()));
        fnv.add(s.exists ? std::to_string(s.size) + " " + std::to_string(s.mtime_ns) : std::string("missing"));
        total_bytes += s.size;
    };
    add_file(wnids_path);
    add_file(words_path);
    add_file(ann_path);
    for (const Source& s : train) add_file(s.path);
    for (const Source& s : val) add_file(s.path);
    const int64_t n_train =
        options.limit_train > 0 ? std::min<int64_t>(options.limit_train, int64_t(train.size())) : int64_t(train.size());
    // Every class has files (checked above); when the limit cuts none of them, every class must also keep an
    // image after the failures are skipped. A cut prefix may leave classes short or empty by design.
    const bool whole_train = n_train == int64_t(train.size());
    const int64_t n_val =
        options.limit_val > 0 ? std::min<int64_t>(options.limit_val, int64_t(val.size())) : int64_t(val.size());
    train.resize(size_t(n_train));
    val.resize(size_t(n_val));
    char hash[20];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv.h));
    std::string fingerprint = "tiny-imagenet v1; classes " + std::to_string(wnids.size()) + "; train " +
                              std::to_string(n_train) + "; val " + std::to_string(n_val) + "; limits " +
                              std::to_string(options.limit_train) + " " + std::to_string(options.limit_val) +
                              "; max failures " + std::to_string(options.max_failure_fraction) + "; source bytes " +
                              std::to_string(total_bytes) + "; files hash " + hash;
    const std::string cache_path = options.cache_path.empty() ? root + "/dyad-cache.bin" : options.cache_path;

    LoadReport local;
    LoadReport& rep = report ? *report : local;
    rep = LoadReport{};
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

    if (options.use_cache) {
        Split cached;
        std::string why;
        if (read_cache(cache_path, fingerprint, &cached, &why) && cached.train.class_ids == wnids &&
            cached.val.class_ids == wnids) {
            rep.from_cache = true;
            rep.seconds = elapsed();
            return cached;
        }
    }

    // ------------------------------------------------------------------------ decode
    Split out;
    out.train.class_ids = out.val.class_ids = wnids;
    out.train.class_names = out.val.class_names = names;
    const std::vector<Source>* lists[2] = {&train, &val};
    Dataset* sets[2] = {&out.train, &out.val};
    const char* split_names[2] = {"train", "val"};
    std::vector<Tensor> images(2);
    const size_t image_bytes = size_t(kSide * kSide * 3);
    for (int s = 0; s < 2; s++)
        images[size_t(s)] = Tensor::empty({int64_t(lists[s]->size()), kSide, kSide, 3}, DType::uint8);
    // One job list over both splits.
    const size_t total = train.size() + val.size();
    std::vector<std::string> why(total);
    std::vector<std::string> resized_from(total);  // "WxH" of an image resized to kSide x kSide
    std::vector<char> ok(total, 0);
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (;;) {
            const size_t j = next.fetch_add(1);
            if (j >= total) return;
            const int s = j < train.size() ? 0 : 1;
            const size_t i = s == 0 ? j : j - train.size();
            const std::string& path = (*lists[s])[i].path;
            try {
                Image im = decode_image_file(path, 3);
                if (im.h != kSide || im.w != kSide) {
                    resized_from[j] = std::to_string(im.w) + "x" + std::to_string(im.h);
                    im = resize_and_crop(im, kSide);
                }
                std::memcpy(images[size_t(s)].data<uint8_t>() + i * image_bytes, im.pixels.data(), image_bytes);
                ok[j] = 1;
            } catch (const std::exception& e) {
                why[j] = reason_of(e.what(), path);
            }
        }
    };
    size_t threads = options.threads > 0 ? size_t(options.threads) : size_t(std::thread::hardware_concurrency());
    threads = std::max<size_t>(1, std::min(threads, total));
    {
        std::vector<std::thread> pool;
        for (size_t t = 1; t < threads; t++) pool.emplace_back(work);
        work();
        for (std::thread& t : pool) t.join();
    }

    // Failures: recorded, checked against the tolerance per split, then the good images compacted.
    for (size_t j = 0; j < total; j++) {
        const int s = j < train.size() ? 0 : 1;
        const std::string& path = (*lists[s])[s == 0 ? j : j - train.size()].path;
        if (!ok[j]) rep.failures.emplace_back(path, why[j]);
        if (ok[j] && !resized_from[j].empty()) rep.resized.emplace_back(path, resized_from[j]);
    }
    for (int s = 0; s < 2; s++) {
        const size_t base = s == 0 ? 0 : train.size(), count = lists[s]->size();
        size_t bad = 0;
        for (size_t i = 0; i < count; i++) bad += !ok[base + i];
        const double fraction = count ? double(bad) / double(count) : 0.0;
        if (fraction > options.max_failure_fraction) {
            rep.seconds = elapsed();
            std::ostringstream os;
            os << op << ": '" << root << "': " << bad << " of " << count << " " << split_names[s]
               << " images failed to decode (" << 100.0 * fraction << "%, more than the allowed "
               << 100.0 * options.max_failure_fraction << "%)";
            int shown = 0;
            for (size_t i = 0; i < count && shown < kShownFailures; i++) {
                if (ok[base + i]) continue;
                os << (shown ? "; " : ": ") << "'" << (*lists[s])[i].path << "': " << why[base + i];
                shown++;
            }
            if (bad > size_t(shown)) os << "; ...";
            DYAD_CHECK(false, os.str());
        }
        std::vector<int32_t> labels;
        labels.reserve(count);
        uint8_t* px = images[size_t(s)].data<uint8_t>();
        for (size_t i = 0; i < count; i++) {
            if (!ok[base + i]) continue;
            if (labels.size() != i) std::memmove(px + labels.size() * image_bytes, px + i * image_bytes, image_bytes);
            labels.push_back((*lists[s])[i].label);
        }
        if (s == 0 && whole_train) {
            std::vector<int64_t> kept(wnids.size(), 0);
            for (const int32_t label : labels) kept[size_t(label)]++;
            for (size_t k = 0; k < wnids.size(); k++) {
                if (kept[k] > 0) continue;
                std::ostringstream os;
                os << op << ": '" << root << "': class '" << wnids[k] << "' (label " << k
                   << ") has no train image left: all " << per_class[k].size() << " of its files failed to decode";
                for (size_t i = 0; i < count; i++) {
                    if ((*lists[s])[i].label != int32_t(k)) continue;
                    os << " (e.g. '" << (*lists[s])[i].path << "': " << why[base + i] << ")";
                    break;
                }
                rep.seconds = elapsed();
                DYAD_CHECK(false, os.str());
            }
        }
        const int64_t good = int64_t(labels.size());
        Tensor im = images[size_t(s)];
        if (good < int64_t(count)) {
            im = im.slice(0, 0, good);
            if (good * 2 < int64_t(count)) im = im.clone();  // do not hold on to mostly unused memory
        }
        sets[s]->images = im;
        sets[s]->labels = Tensor::from_vector(labels, {good});
        rep.decoded += good;
    }

    if (options.use_cache) {
        try {
            write_cache(cache_path, out, fingerprint);
        } catch (const std::exception& e) {
            std::cerr << "warning: " << op << ": the cache '" << cache_path << "' was not written: " << e.what()
                      << "\n";
        }
    }
    rep.seconds = elapsed();
    return out;
}

}  // namespace dyad::data
