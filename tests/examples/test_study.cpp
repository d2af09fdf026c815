// The acceleration study (examples/tinyimagenet/study.h): its sweep sizes and FLOP counts, the backends it
// picks, a small sweep's outputs (study.csv and study.json agree with the points, every GFLOP/s is the FLOP
// over the median time), the budget stopping a backend, the speed-ups and crossover, and the command line.
#include "support/catch.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dyad/dyad.h"
#include "support/files.h"
#include "trainer.h"

using namespace dyad;
using namespace dyad::trainer;

namespace {

std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("study", name); }

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::string> cells;
        std::stringstream s(line);
        std::string cell;
        while (std::getline(s, cell, ',')) cells.push_back(cell);
        rows.push_back(cells);
    }
    return rows;
}

}  // namespace

TEST_CASE("study: the SGEMM sizes double from 64 and count 2 n^3 operations", "[study]") {
    REQUIRE(sgemm_sizes(64) == std::vector<int64_t>{64});
    REQUIRE(sgemm_sizes(1000) == std::vector<int64_t>{64, 128, 256, 512});
    REQUIRE(sgemm_sizes(8192).back() == 8192);
    REQUIRE(sgemm_flop(100) == 2e6);
    REQUIRE(sgemm_flop(8192) == 2.0 * 8192.0 * 8192.0 * 8192.0);
}

TEST_CASE("study: the backends measured, and unknown or absent ones refused", "[study]") {
    REQUIRE(study_backends({}, false) == std::vector<std::string>{"naive", "cpu1", "cpu"});
    REQUIRE(study_backends({}, true) == std::vector<std::string>{"naive", "cpu1", "cpu", "cuda"});
    REQUIRE(study_backends({"cpu", "naive"}, false) == std::vector<std::string>{"cpu", "naive"});
    REQUIRE_THROWS_WITH(study_backends({"gpu"}, false), Catch::Contains("unknown backend 'gpu'"));
    REQUIRE_THROWS_WITH(study_backends({"cuda"}, false), Catch::Contains("no GPU was found"));
}

TEST_CASE("study: a small sweep writes every point to study.csv and study.json", "[study]") {
    StudyOptions o;
    o.out = fresh_dir("small");
    o.budget = 30;
    o.max_n = 128;
    o.devices = {"naive", "cpu1"};
    o.steps = false;
    o.quiet = true;
    const StudyResult r = run_study(o);
    REQUIRE(r.points.size() == 4);  // 2 backends x n = 64, 128: far within the budget
    for (const StudyPoint& p : r.points) {
        CHECK(p.kind == "sgemm");
        CHECK(p.flop == sgemm_flop(p.size));
        CHECK(p.seconds > 0);
        CHECK(p.repeats >= 3);
        CHECK(p.threads == 1);
        CHECK(p.gflops() == Approx(p.flop / p.seconds * 1e-9));
    }
    const auto rows = read_csv(o.out + "/study.csv");
    REQUIRE(rows.size() == 5);
    REQUIRE(rows[0] == std::vector<std::string>{"kind", "backend", "threads", "model", "image", "size", "flop",
                                                "seconds", "repeats", "gflops"});
    for (size_t i = 1; i < rows.size(); i++) {
        const StudyPoint& p = r.points[i - 1];
        REQUIRE(rows[i].size() == 10);
        CHECK(rows[i][1] == p.backend);
        CHECK(std::stoll(rows[i][5]) == p.size);
        CHECK(std::stod(rows[i][6]) == p.flop);
        CHECK(std::stod(rows[i][7]) == Approx(p.seconds).epsilon(1e-8));
        CHECK(std::stod(rows[i][9]) == Approx(std::stod(rows[i][6]) / std::stod(rows[i][7]) * 1e-9).epsilon(1e-7));
    }
    std::ifstream in(o.out + "/study.json");
    const nlohmann::json j = nlohmann::json::parse(in);
    REQUIRE(j["points"].size() == r.points.size());
    CHECK(j["points"][3]["backend"] == "cpu1");
    CHECK(j["points"][3]["size"] == 128);
    CHECK(j["facts"].contains("CPU"));

    // Speed-ups: the reference's time over the backend's at each size both ran; the crossover is the first
    // size where that ratio exceeds 1.
    const auto s = speedups(r, "sgemm", "cpu1", "naive");
    REQUIRE(s.size() == 2);
    CHECK(s[0].second == Approx(r.points[0].seconds / r.points[2].seconds));
    const int64_t x = crossover(r, "sgemm", "cpu1", "naive");
    CHECK(x == (s[0].second > 1 ? 64 : s[1].second > 1 ? 128 : 0));
    CHECK(speedups(r, "sgemm", "cuda", "naive").empty());

    // The chart against the CSV: one line per backend, as many points as the backend's rows, on log axes
    // whose decade ticks cover the sizes (64 and 128 lie between 10 and 1000).
    const std::string svg = test::read_bytes(o.out + "/sgemm.svg");
    size_t lines = 0;
    for (size_t at = svg.find("<polyline points=\""); at != std::string::npos;
         at = svg.find("<polyline points=\"", at + 1)) {
        const size_t begin = at + 18, end = svg.find('"', begin);
        const std::string pts = svg.substr(begin, end - begin);
        CHECK(std::count(pts.begin(), pts.end(), ',') == 2);  // n = 64 and 128
        lines++;
    }
    CHECK(lines == 2);
    CHECK(svg.find(">naive</text>") != std::string::npos);
    CHECK(svg.find(">cpu1</text>") != std::string::npos);
    CHECK(svg.find(">100</text>") != std::string::npos);
    CHECK(svg.find(">GFLOP/s</text>") != std::string::npos);
}

TEST_CASE("study: a backend stops when its next point would not fit its share of the budget", "[study]") {
    StudyOptions o;
    o.out = fresh_dir("budget");
    o.budget = 0.05;  // naive's n = 512 takes about 0.25 s a run
    o.max_n = 8192;
    o.devices = {"naive"};
    o.steps = false;
    o.quiet = true;
    const StudyResult r = run_study(o);
    REQUIRE(!r.points.empty());
    CHECK(r.points.back().size < 8192);
    REQUIRE(r.notes.size() == 1);
    CHECK(r.notes[0].find("naive: sgemm stopped after n = " + std::to_string(r.points.back().size)) == 0);
    REQUIRE_THROWS_WITH(run_study([] {
                            StudyOptions bad;
                            bad.budget = 0;
                            return bad;
                        }()),
                        Catch::Contains("--budget must be positive"));
}

TEST_CASE("study: the training-step series, their FLOP counts and their points", "[study]") {
    const auto series = step_series();
    REQUIRE(series.size() == 4);
    CHECK(series_kind(series[0]) == "step baseline 32");
    CHECK(series[2].image == 128);
    CHECK(series[0].batches.front() == 1);
    CHECK(series[0].batches.back() == 1024);
    CHECK(series[3].model == "resnet18");
    CHECK(series[3].batches == std::vector<int64_t>{8, 16, 32, 64, 128, 256});
    // A step is three forward passes' FLOP (the count bench_train_step uses), linear in the batch. The
    // baseline's forward at 32x32, by hand: convs 2 * (32*32*32 * 3*9 + 64*16*16 * 32*9 + 128*8*8 * 64*9)
    // plus linears 2 * (128*4*4 * 256 + 256 * 200).
    const double convs = 2.0 * (32.0 * 32 * 32 * 3 * 9 + 64.0 * 16 * 16 * 32 * 9 + 128.0 * 8 * 8 * 64 * 9);
    const double linears = 2.0 * (128.0 * 4 * 4 * 256 + 256.0 * 200);
    CHECK(step_flop("baseline", 32, 1) == 3.0 * (convs + linears));
    CHECK(step_flop("baseline", 32, 8) == 8.0 * step_flop("baseline", 32, 1));
    {
        manual_seed(1);
        auto m = make_model("resnet18", 200, 3, 64);
        CHECK(step_flop("resnet18", 64, 2) == 6.0 * nn::forward_flop(*m, {1, 3, 64, 64}));
    }

    StudyOptions o;
    o.out = fresh_dir("steps");
    o.budget = 60;
    o.max_n = 64;
    o.max_batch = 2;  // batches 1 and 2 of the baseline's three image sizes; the ResNet's start at 8
    o.devices = {"cpu1"};
    o.quiet = true;
    const StudyResult r = run_study(o);
    std::vector<std::string> steps;
    for (const StudyPoint& p : r.points)
        if (p.kind == "step") {
            steps.push_back(p.model + " " + std::to_string(p.image) + " " + std::to_string(p.size));
            CHECK(p.flop == step_flop(p.model, p.image, p.size));
            CHECK(p.seconds > 0);
        }
    CHECK(steps == std::vector<std::string>{"baseline 32 1", "baseline 32 2", "baseline 64 1", "baseline 64 2",
                                            "baseline 128 1", "baseline 128 2"});
    CHECK(r.notes.empty());
}

TEST_CASE("study: the progress line shows the budget spent and the point", "[study]") {
    StudyPoint p;
    p.kind = "sgemm";
    p.backend = "cpu";
    p.size = 2048;
    p.flop = sgemm_flop(2048);
    p.seconds = 0.091;
    const std::string line = study_progress_line(p, 45, 180, 24);
    CHECK(line.find("[######..................] 45 s of 180 s") != std::string::npos);
    CHECK(line.find("sgemm n = 2048") != std::string::npos);
    CHECK(line.find("91.000 ms") != std::string::npos);
    CHECK(line.find("188.8 GFLOP/s") != std::string::npos);
    CHECK(study_progress_line(p, 500, 180, 10).find("[##########]") != std::string::npos);  // over budget: full
    p.kind = "step";
    p.model = "resnet18";
    p.image = 64;
    p.size = 32;
    CHECK(study_progress_line(p, 0, 180, 4).find("[....] 0.00 s of 180 s  cpu   resnet18 64px batch 32") !=
          std::string::npos);
}

TEST_CASE("study: the command line", "[study]") {
    const CommandLine cl = parse_command_line(
        {"study", "--budget", "12", "--device", "naive,cpu", "--max-n", "256", "--out", "somewhere", "--quiet"});
    REQUIRE(cl.action == CommandLine::Action::study);
    CHECK(cl.study.budget == 12);
    CHECK(cl.study.devices == std::vector<std::string>{"naive", "cpu"});
    CHECK(cl.study.max_n == 256);
    CHECK(cl.study.out == "somewhere");
    CHECK(cl.study.quiet);
    CHECK(cl.study.steps);
    CHECK(cl.study.max_batch == 1024);
    const CommandLine only = parse_command_line({"study", "--sgemm-only", "--max-batch", "16"});
    CHECK(!only.study.steps);
    CHECK(only.study.max_batch == 16);
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--max-batch", "0"}), Catch::Contains("--max-batch"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--device", "gpu"}), Catch::Contains("--device"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--budget", "0"}), Catch::Contains("--budget"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--max-n", "32"}), Catch::Contains("--max-n"));
    CHECK(parse_command_line({"study", "--help"}).help.find("--budget SECONDS") != std::string::npos);
}
