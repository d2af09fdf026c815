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

#include "bench/cases.h"
#include "dyad/dyad.h"
#include "support/files.h"
#include "support/xml.h"
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
    REQUIRE(study_backends({}, true) ==
            std::vector<std::string>{"naive", "cpu1", "cpu", "cuda", "cuda-tf32", "cuda-bf16"});
    REQUIRE(study_backends({"cuda-bf16"}, true) == std::vector<std::string>{"cuda-bf16"});
    REQUIRE_THROWS_WITH(study_backends({"cuda-tf32"}, false), Catch::Contains("--device cuda-tf32"));
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
                                                "seconds", "repeats", "gflops", "first_seconds", "pct_ceiling"});
    // The ceilings: the FMA peak on one thread for both (on a CPU with AVX2 and FMA).
    REQUIRE(r.ceilings.size() == 2);
    CHECK(r.ceiling("naive") == r.ceiling("cpu1"));
    CHECK(r.ceiling("cuda") == 0);
    for (size_t i = 1; i < rows.size(); i++) {
        const StudyPoint& p = r.points[i - 1];
        REQUIRE(rows[i].size() == 12);
        CHECK(p.first_seconds > 0);
        CHECK(std::stod(rows[i][10]) == Approx(p.first_seconds).epsilon(1e-8));
        if (r.ceiling(p.backend) > 0)
            CHECK(std::stod(rows[i][11]) == Approx(100 * p.gflops() / r.ceiling(p.backend)).epsilon(1e-7));
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
    CHECK(j["ceilings"].size() == 2);
    CHECK(j["backends"] == nlohmann::json({"naive", "cpu1"}));
    // The page: well-formed, self-contained, with the summary, the charts and the crossover.
    const std::string html = test::read_bytes(o.out + "/study.html");
    CHECK(test::xml_problem(html) == "");
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
    CHECK(html.find(">Summary</h2>") != std::string::npos);
    CHECK(html.find("SGEMM, n x n by n x n: speed-up over naive") != std::string::npos);
    CHECK(html.find("No per-layer profile was measured.") != std::string::npos);  // no step series

    // Speed-ups: the reference's time over the backend's at each size both ran; the crossover is the first
    // size from which that ratio stays above 1.
    const auto s = speedups(r, "sgemm", "cpu1", "naive");
    REQUIRE(s.size() == 2);
    CHECK(s[0].second == Approx(r.points[0].seconds / r.points[2].seconds));
    const int64_t x = crossover(r, "sgemm", "cpu1", "naive");
    CHECK(x == (s[1].second > 1 ? (s[0].second > 1 ? 64 : 128) : 0));
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
                            bad.budget = -1;
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
    // The per-layer profile of the baseline at 64 px, at the largest batch measured up to 32: every leaf layer
    // timed forward and backward, and the whole model.
    REQUIRE(r.profiles.size() == 1);
    const StudyProfile& pr = r.profiles[0];
    CHECK(pr.backend == "cpu1");
    CHECK(pr.batch == 2);
    REQUIRE(pr.layers.size() >= 5);
    CHECK(pr.layers.back().layer == "whole model");
    for (const LayerTime& l : pr.layers) {
        INFO(l.layer);
        CHECK(l.forward_ms > 0);
        CHECK(l.backward_ms > 0);
    }
    CHECK(pr.layers.front().layer.find("Conv2d") != std::string::npos);
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
    CHECK(parse_command_line({"study"}).study.budget == 0);  // automatic: 180 s, 120 s with a GPU
    CHECK(parse_command_line({"study", "--device", "cuda-tf32,cuda-bf16"}).study.devices ==
          std::vector<std::string>{"cuda-tf32", "cuda-bf16"});
    const CommandLine only = parse_command_line({"study", "--sgemm-only", "--max-batch", "16"});
    CHECK(!only.study.steps);
    CHECK(only.study.max_batch == 16);
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--max-batch", "0"}), Catch::Contains("--max-batch"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--device", "gpu"}), Catch::Contains("--device"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--budget", "0"}), Catch::Contains("--budget"));
    REQUIRE_THROWS_WITH(parse_command_line({"study", "--max-n", "32"}), Catch::Contains("--max-n"));
    CHECK(parse_command_line({"study", "--help"}).help.find("--budget SECONDS") != std::string::npos);
}

namespace {

StudyPoint point(const std::string& kind, const std::string& backend, int64_t size, double seconds) {
    StudyPoint p;
    p.kind = kind;
    p.backend = backend;
    p.size = size;
    p.flop = sgemm_flop(size);
    p.seconds = seconds;
    p.first_seconds = 2 * seconds;
    p.repeats = 3;
    return p;
}

// The coordinates of a chart's polylines, in drawing order.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& svg) {
    std::vector<std::vector<std::pair<double, double>>> out;
    for (size_t at = svg.find("<polyline points=\""); at != std::string::npos;
         at = svg.find("<polyline points=\"", at + 1)) {
        const size_t begin = at + 18, end = svg.find('"', begin);
        std::stringstream pts(svg.substr(begin, end - begin));
        std::vector<std::pair<double, double>> line;
        std::string xy;
        while (pts >> xy)
            line.push_back({std::stod(xy.substr(0, xy.find(','))), std::stod(xy.substr(xy.find(',') + 1))});
        out.push_back(line);
    }
    return out;
}

// The x1 of every <line> in a group of the given class ("mark"), and the y1 of the "reference" line.
std::vector<double> attr_after(const std::string& svg, const std::string& marker, const std::string& attr) {
    std::vector<double> out;
    for (size_t at = svg.find(marker); at != std::string::npos; at = svg.find(marker, at + 1)) {
        const size_t a = svg.find(attr + "=\"", at) + attr.size() + 2;
        out.push_back(std::stod(svg.substr(a, svg.find('"', a) - a)));
    }
    return out;
}

// naive and cpu at n = 64, 128, 256: cpu is slower at 64 (0.5x), faster from 128 (2x, 4x).
StudyResult sample_study() {
    StudyResult r;
    r.backends = {"naive", "cpu"};
    r.facts = {{"CPU", "test <cpu>"}};
    r.points = {point("sgemm", "naive", 64, 1.0), point("sgemm", "naive", 128, 8.0), point("sgemm", "naive", 256, 64.0),
                point("sgemm", "cpu", 64, 2.0),   point("sgemm", "cpu", 128, 4.0),   point("sgemm", "cpu", 256, 16.0)};
    r.ceilings = {{"naive", 1.0, "FP32 FMA peak on 1 thread"}, {"cpu", sgemm_flop(256) / 16.0 * 1e-9, "peak"}};
    r.notes = {"naive: stopped <here>"};
    return r;
}

}  // namespace

TEST_CASE("study: the speed-up chart plots the ratios and marks the crossover", "[study][svg]") {
    const StudyResult r = sample_study();
    REQUIRE(crossover(r, "sgemm", "cpu", "naive") == 128);
    const std::string svg = study_speedup_chart(r, "sgemm", "naive");
    INFO(svg);
    CHECK(test::xml_problem(svg) == "");
    const auto lines = polylines(svg);
    REQUIRE(lines.size() == 1);  // cpu only: naive is the reference
    REQUIRE(lines[0].size() == 3);
    // Log axes: n doubles, so x steps evenly; the ratio 0.5, 2, 4: y steps are -2:1 in log units.
    const double dx1 = lines[0][1].first - lines[0][0].first, dx2 = lines[0][2].first - lines[0][1].first;
    CHECK(dx1 == Approx(dx2).margin(0.02));
    const double dy1 = lines[0][1].second - lines[0][0].second, dy2 = lines[0][2].second - lines[0][1].second;
    CHECK(dy1 == Approx(2 * dy2).margin(0.03));  // coordinates are written to 0.01: three roundings
    CHECK(dy1 < 0);                              // faster is higher
    // The crossover: one dashed line at the second point's x, labelled; the 1x line between the first and
    // second points' heights, at a third of the way (log 0.5 .. log 2).
    const auto marks = attr_after(svg, "<g class=\"mark\">", "x1");
    REQUIRE(marks.size() == 1);
    CHECK(marks[0] == Approx(lines[0][1].first).margin(0.02));
    CHECK(svg.find(">cpu faster from 128</text>") != std::string::npos);
    const auto ref = attr_after(svg, "<g class=\"reference\">", "y1");
    REQUIRE(ref.size() == 1);
    CHECK(ref[0] == Approx(lines[0][0].second + dy1 / 2).margin(0.02));
    CHECK(svg.find(">as fast as naive</text>") != std::string::npos);

    // A backend faster only at the small sizes never crosses over, and one never faster has no mark.
    StudyResult early = r;
    early.points[5].seconds = 100;  // cpu at n = 256: slower than naive again
    CHECK(crossover(early, "sgemm", "cpu", "naive") == 0);
    early.points[3].seconds = 0.5;  // and faster at n = 64
    CHECK(crossover(early, "sgemm", "cpu", "naive") == 0);
    early.points[5].seconds = 1;
    CHECK(crossover(early, "sgemm", "cpu", "naive") == 64);
    // A backend never faster has no mark.
    StudyResult slow = r;
    for (StudyPoint& p : slow.points)
        if (p.backend == "cpu") p.seconds *= 100;
    CHECK(attr_after(study_speedup_chart(slow, "sgemm", "naive"), "<g class=\"mark\">", "x1").empty());
}

TEST_CASE("study: the ceiling chart plots each point's rate over its backend's ceiling", "[study][svg]") {
    const StudyResult r = sample_study();
    const std::string svg = study_ceiling_chart(r, "sgemm");
    INFO(svg);
    CHECK(test::xml_problem(svg) == "");
    const auto lines = polylines(svg);
    REQUIRE(lines.size() == 2);
    // cpu's n = 256 point is its ceiling: on the 100% line.
    const auto ref = attr_after(svg, "<g class=\"reference\">", "y1");
    REQUIRE(ref.size() == 1);
    CHECK(lines[1][2].second == Approx(ref[0]).margin(0.02));
    CHECK(lines[1][1].second > ref[0]);  // below the ceiling
}

TEST_CASE("study: study.html gathers the charts, the summary, the profiles and the notes", "[study][html]") {
    StudyResult r = sample_study();
    r.profiles = {
        {"naive", "baseline", 64, 8, {{"0 Conv2d(3, 32)", 40, 80}, {"1 ReLU", 2, 2}, {"whole model", 45, 85}}},
        {"cpu", "baseline", 64, 8, {{"0 Conv2d(3, 32)", 1, 2}, {"1 ReLU", 0.5, 0.5}, {"whole model", 1.6, 2.6}}}};
    const std::string path = fresh_dir("html") + "/study.html";
    write_study_html(path, r);
    const std::string html = test::read_bytes(path);
    INFO(html);
    CHECK(test::xml_problem(html) == "");
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
    // Facts escaped, the ceilings named.
    CHECK(html.find(">test &lt;cpu&gt;<") != std::string::npos);
    CHECK(html.find("ceiling of naive") != std::string::npos);
    // Summary row of cpu: speed-up at the largest size both ran, and where it starts to win.
    CHECK(html.find("<td class=\"num\">4.0x (256)</td><td class=\"num\">n = 128</td>") != std::string::npos);
    // Charts: rate, speed-up over naive, ceiling; the per-layer shares and speed-ups.
    CHECK(html.find("SGEMM, n x n by n x n: speed-up over naive") != std::string::npos);
    CHECK(html.find("Share of each layer, per backend") != std::string::npos);
    CHECK(html.find("Speed-up per layer over naive") != std::string::npos);
    size_t svgs = 0;
    for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) svgs++;
    CHECK(svgs == 5);
    // Per layer over naive: the convolution (120 / 3 = 40x), the ReLU (4 / 1 = 4x).
    CHECK(html.find(">40.0x<") != std::string::npos);
    CHECK(html.find(">4.0x<") != std::string::npos);
    // Setup: the first run apart from the median (2 s vs 1 s at naive's n = 64).
    CHECK(html.find("<td>sgemm</td><td>naive</td><td class=\"num\">64</td><td class=\"num\">2000.000</td>"
                    "<td class=\"num\">1000.000</td><td class=\"num\">1000.000</td>") != std::string::npos);
    CHECK(html.find("naive: stopped &lt;here&gt;") != std::string::npos);
    // The times side by side: one row per size, one column per backend, in milliseconds.
    CHECK(html.find("<tr><th>n</th><th>naive (ms)</th><th>cpu (ms)</th></tr>\n<tr><td class=\"num\">64</td><td "
                    "class=\"num\">1000</td><td class=\"num\">2000</td></tr>") != std::string::npos);
}

TEST_CASE("study: the machine facts name the CPU, its cores, the memory and the GPU", "[study]") {
    const auto facts = machine_facts(3);
    std::vector<std::string> keys;
    for (const auto& f : facts) keys.push_back(f.first);
    REQUIRE(keys == std::vector<std::string>{"CPU", "memory", "GPU"});
    CHECK(facts[0].second.find(cpu_model()) == 0);
    CHECK(facts[0].second.find("logical CPUs") != std::string::npos);
    CHECK(facts[0].second.find("3 threads used") != std::string::npos);
    CHECK(facts[1].second.find("GiB") != std::string::npos);
    if (!cuda_available()) CHECK(facts[2].second.find("none") == 0);
}

TEST_CASE("study: its points compute what the matching benchmarks compute", "[study][bench]") {
    // SGEMM: every square case of bench_gemm (CPU and GPU) is a study size with the same shape and FLOP.
    const std::vector<int64_t> sizes = sgemm_sizes(8192);
    int matched = 0;
    std::vector<bench::GemmCase> all(std::begin(bench::kGemmCases), std::end(bench::kGemmCases));
    all.insert(all.end(), std::begin(bench::kGemmGpuCases), std::end(bench::kGemmGpuCases));
    for (const bench::GemmCase& c : all) {
        if (std::string(c.name).rfind("square", 0) != 0) continue;
        INFO(c.name);
        CHECK(c.m == c.n);
        CHECK(c.n == c.k);
        CHECK((!c.trans_a && !c.trans_b));
        CHECK(std::find(sizes.begin(), sizes.end(), c.n) != sizes.end());
        CHECK(sgemm_flop(c.n) == bench::gemm_flop(c));
        matched++;
    }
    CHECK(matched == 5);  // 256 ... 2048 on the CPU, 4096 on the GPU

    // The training step: bench_train_step's models at its image size are the study's (same parameters,
    // same FLOP per step at every batch the benchmark runs), with the same optimizer and labels.
    const auto series = step_series();
    for (int64_t id : {0, 1}) {
        const std::string name = bench::train_step_model_name(id);
        INFO(name);
        const auto s = std::find_if(series.begin(), series.end(), [&](const StepSeries& x) {
            return x.model == name && x.image == bench::kTrainStepImage;
        });
        REQUIRE(s != series.end());
        manual_seed(1);
        auto theirs = bench::train_step_model(id);
        manual_seed(1);
        auto ours = make_model(name, bench::kTrainStepClasses, 3, bench::kTrainStepImage);
        const auto a = theirs->named_parameters(), b = ours->named_parameters();
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); i++) {
            CHECK(a[i].first == b[i].first);
            CHECK(a[i].second.shape() == b[i].second.shape());
        }
        for (int64_t batch : {8, 32, 64, 128, 256}) {
            CHECK(std::find(s->batches.begin(), s->batches.end(), batch) != s->batches.end());
            CHECK(step_flop(name, bench::kTrainStepImage, batch) == bench::train_step_flop(*theirs, batch));
        }
    }
    const optim::SgdOptions mine = study_sgd(), bench_sgd = bench::train_step_sgd();
    CHECK(mine.lr == bench_sgd.lr);
    CHECK(mine.momentum == bench_sgd.momentum);
    CHECK(mine.weight_decay == bench_sgd.weight_decay);
    CHECK(mine.nesterov == bench_sgd.nesterov);
    CHECK(mine.dampening == bench_sgd.dampening);
}
