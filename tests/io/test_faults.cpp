// Faults while writing files: a full disk (ENOSPC injected into the one write path every format uses)
// and a process killed in the middle of a write (a forked child that SIGKILLs itself there). Either way
// the file that was there before stays intact and loadable, and nothing half-written is ever read.
#include "support/catch.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "lib/io/file.h"
#include "support/files.h"

using namespace dyad;

namespace {

std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("faults", name); }

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    return out;
}

// Ends the injected fault even when a REQUIRE fails.
struct FaultGuard {
    FaultGuard(int64_t after_bytes, int err) { io::detail::inject_write_fault(after_bytes, err); }
    ~FaultGuard() { io::detail::clear_write_fault(); }
    FaultGuard(const FaultGuard&) = delete;
    FaultGuard& operator=(const FaultGuard&) = delete;
};

// Two differently initialised small models: `a` is saved first, `b` is the one whose save fails.
struct Models {
    std::shared_ptr<nn::Sequential> a, b;
    Models() {
        manual_seed(1);
        a = models::baseline_cnn(10, 1, 8);
        manual_seed(2);
        b = models::baseline_cnn(10, 1, 8);
    }
};

// True when the checkpoint at `path` loads and holds exactly `model`'s tensors.
bool holds(const std::string& path, const nn::Module& model) {
    manual_seed(99);
    auto loaded = models::baseline_cnn(10, 1, 8);
    io::load(path, *loaded);
    const nn::NamedTensors want = model.state_dict(), got = loaded->state_dict();
    if (want.size() != got.size()) return false;
    for (size_t i = 0; i < want.size(); i++)
        if (want[i].second.to_vector<float>() != got[i].second.to_vector<float>()) return false;
    return true;
}

}  // namespace

TEST_CASE("faults: a checkpoint written to a full disk fails clearly and keeps the previous one", "[io][faults]") {
    const std::string dir = fresh_dir("full-disk");
    const std::string path = dir + "/model.safetensors";
    Models m;
    io::save(path, *m.a);
    const std::string before = test::read_bytes(path);
    for (int64_t after : {int64_t(0), int64_t(7), int64_t(4096), int64_t(before.size()) - 1}) {
        CAPTURE(after);
        {
            FaultGuard fault(after, ENOSPC);
            REQUIRE_THROWS_WITH(io::save(path, *m.b), Catch::Contains("cannot write '" + path + "'") &&
                                                          Catch::Contains("No space left on device"));
        }
        REQUIRE(test::read_bytes(path) == before);
        REQUIRE(holds(path, *m.a));
        // The temporary file is gone: the directory holds the checkpoint only.
        REQUIRE(files_in(dir) == std::vector<std::string>{"model.safetensors"});
    }
    // Once space is back, the save goes through.
    io::save(path, *m.b);
    REQUIRE(holds(path, *m.b));
}

TEST_CASE("faults: a data-set cache written to a full disk fails clearly and keeps the previous one",
          "[io][faults][cache]") {
    const std::string dir = fresh_dir("full-disk-cache");
    const std::string path = dir + "/cache.bin";
    data::Split split;
    split.train.images = Tensor::from_vector(std::vector<uint8_t>(4 * 5 * 5 * 3, 7), {4, 5, 5, 3});
    split.train.labels = Tensor::from_vector(std::vector<int32_t>{0, 1, 0, 1}, {4});
    split.train.class_ids = split.train.class_names = {"a", "b"};
    split.val = split.train;
    data::write_cache(path, split, "one");
    const std::string before = test::read_bytes(path);
    {
        FaultGuard fault(100, ENOSPC);
        REQUIRE_THROWS_WITH(data::write_cache(path, split, "two"), Catch::Contains("No space left on device"));
    }
    REQUIRE(test::read_bytes(path) == before);
    data::Split back;
    REQUIRE(data::read_cache(path, "one", &back));
    REQUIRE(files_in(dir) == std::vector<std::string>{"cache.bin"});
}

TEST_CASE("faults: a process killed while writing a checkpoint leaves the previous one loadable", "[io][faults]") {
    const std::string dir = fresh_dir("killed");
    const std::string path = dir + "/model.safetensors";
    Models m;
    io::save(path, *m.a);
    const std::string before = test::read_bytes(path);
    for (int64_t after : {int64_t(0), int64_t(100), int64_t(before.size()) / 2, int64_t(before.size()) - 1}) {
        CAPTURE(after);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            // The child only writes a file (no OpenMP), then dies by SIGKILL in the middle of it.
            io::detail::inject_write_fault(after, 0);
            try {
                io::save(path, *m.b);
            } catch (...) {
            }
            ::_exit(3);  // not reached when the fault fires
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFSIGNALED(status));
        REQUIRE(WTERMSIG(status) == SIGKILL);
        REQUIRE(test::read_bytes(path) == before);
        REQUIRE(holds(path, *m.a));
    }
    // What the killed writers left is their temporary files (named after the target, never read); the next
    // save replaces the checkpoint and removes them.
    REQUIRE(files_in(dir).size() > 1);
    for (const std::string& f : files_in(dir))
        if (f != "model.safetensors") REQUIRE(f.rfind("model.safetensors.tmp.", 0) == 0);
    io::save(path, *m.b);
    REQUIRE(holds(path, *m.b));
    REQUIRE(files_in(dir) == std::vector<std::string>{"model.safetensors"});
}

namespace {

std::shared_ptr<nn::Sequential> tiny_model(uint64_t seed) {
    manual_seed(seed);
    auto m = std::make_shared<nn::Sequential>();
    m->push_back(std::make_shared<nn::Linear>(3, 2));
    return m;
}

std::vector<std::vector<float>> values_of(const nn::Module& m) {
    std::vector<std::vector<float>> out;
    for (const auto& [name, t] : m.state_dict()) out.push_back(t.to_vector<float>());
    return out;
}

}  // namespace

TEST_CASE("faults: a checkpoint with any bit flipped never loads as different weights", "[io][faults][checkpoint]") {
    const std::string dir = fresh_dir("bit-flips");
    const std::string path = dir + "/tiny.safetensors", bad = dir + "/flipped.safetensors";
    auto saved = tiny_model(1);
    io::save(path, *saved, nullptr, {{"epoch", "3"}});
    const std::string bytes = test::read_bytes(path);
    auto target = tiny_model(2);
    const auto before = values_of(*target);
    int rejected = 0, identical = 0;
    for (size_t i = 0; i < bytes.size(); i++) {
        for (int bit = 0; bit < 8; bit++) {
            std::string flipped = bytes;
            flipped[i] = char(flipped[i] ^ (1 << bit));
            test::write_bytes(bad, flipped);
            try {
                io::load(bad, *target);
            } catch (const Error&) {
                rejected++;
                // A rejected file changes nothing.
                REQUIRE(values_of(*target) == before);
                continue;
            }
            // Accepted only when the flip hit bytes that carry no content (header padding): the weights are
            // exactly the saved ones.
            INFO("byte " << i << " bit " << bit);
            REQUIRE(values_of(*target) == values_of(*saved));
            identical++;
            target = tiny_model(2);
        }
    }
    CAPTURE(rejected, identical);
    REQUIRE(rejected > int(bytes.size()) * 7);
}

TEST_CASE("faults: a checkpoint cut at any byte is rejected and changes nothing", "[io][faults][checkpoint]") {
    const std::string dir = fresh_dir("truncated");
    const std::string path = dir + "/tiny.safetensors", cut = dir + "/cut.safetensors";
    io::save(path, *tiny_model(1));
    const std::string bytes = test::read_bytes(path);
    auto target = tiny_model(2);
    const auto before = values_of(*target);
    for (size_t n = 0; n < bytes.size(); n++) {
        CAPTURE(n);
        test::write_bytes(cut, bytes.substr(0, n));
        REQUIRE_THROWS_AS(io::load(cut, *target), Error);
        REQUIRE(values_of(*target) == before);
    }
}

TEST_CASE("faults: save, load and save again gives the same bytes", "[io][faults][checkpoint]") {
    const std::string dir = fresh_dir("round-trip");
    auto a = tiny_model(1);
    optim::SgdOptions so;
    so.lr = 0.1;
    so.momentum = 0.9;
    optim::Sgd opt_a(a->named_parameters(), so);
    const Tensor loss = sum((*a)(Tensor::randn({4, 3})));
    loss.backward();
    opt_a.step();
    io::save(dir + "/a.safetensors", *a, &opt_a, {{"epoch", "1"}});
    auto b = tiny_model(2);
    optim::Sgd opt_b(b->named_parameters(), so);
    const io::Metadata meta = io::load(dir + "/a.safetensors", *b, &opt_b, /*restore_rng=*/true);
    io::save(dir + "/b.safetensors", *b, &opt_b, {{"epoch", meta.at("epoch")}});
    REQUIRE(test::read_bytes(dir + "/a.safetensors") == test::read_bytes(dir + "/b.safetensors"));
}
