// The trainer's report outputs (examples/tinyimagenet/report.h): SVG charts and report.html checked with a
// small XML well-formedness checker written here (and shown to reject malformed input), metrics.csv parsed
// back, metrics.json checked with a small strict JSON parser written here, the terminal tables and the
// progress line, and errors that name the path.
#include "support/catch.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "dyad/error.h"
#include "report.h"
#include "support/files.h"
#include "support/xml.h"

using namespace dyad::trainer;
using Catch::Contains;
using dyad::test::xml_problem;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------- files

// A fresh folder for one test case (each test case has its own, so parallel ctest runs do not collide).
std::string fresh_dir(const std::string& name) { return dyad::test::fresh_dir("examples_report", name); }

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f.good());
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) n++;
    return n;
}

bool near(double a, double b, double rel = 1e-8) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
    return std::fabs(a - b) <= rel * std::max(1.0, std::max(std::fabs(a), std::fabs(b)));
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), f, v);
    return buf;
}

// ---------------------------------------------------------------------------- JSON

struct Json {
    enum Type { null, boolean, number, string, array, object } type = null;
    bool b = false;
    double num = 0;
    std::string str;
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;

    const Json& at(const std::string& key) const {
        for (const auto& [k, v] : obj)
            if (k == key) return v;
        throw std::string("no member ") + key;
    }
};

// A strict JSON parser (RFC 8259 grammar); throws a std::string describing the problem.
class JsonParser {
public:
    explicit JsonParser(const std::string& t) : s_(t) {}
    Json parse() {
        Json v = value(0);
        ws();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

private:
    const std::string& s_;
    size_t i_ = 0;

    [[noreturn]] void fail(const std::string& what) { throw what + " at byte " + std::to_string(i_); }
    void ws() {
        while (i_ < s_.size() && std::strchr(" \t\r\n", s_[i_])) i_++;
    }
    bool lit(const char* w) {
        if (s_.compare(i_, std::strlen(w), w) != 0) return false;
        i_ += std::strlen(w);
        return true;
    }
    Json value(int depth) {
        if (depth > 32) fail("too deep");
        ws();
        if (i_ >= s_.size()) fail("unexpected end");
        Json v;
        const char c = s_[i_];
        if (c == '{') {
            v.type = Json::object;
            i_++;
            ws();
            if (lit("}")) return v;
            for (;;) {
                ws();
                if (i_ >= s_.size() || s_[i_] != '"') fail("expected a key");
                std::string k = string();
                ws();
                if (!lit(":")) fail("expected ':'");
                v.obj.emplace_back(k, value(depth + 1));
                ws();
                if (lit("}")) return v;
                if (!lit(",")) fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.type = Json::array;
            i_++;
            ws();
            if (lit("]")) return v;
            for (;;) {
                v.arr.push_back(value(depth + 1));
                ws();
                if (lit("]")) return v;
                if (!lit(",")) fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.type = Json::string;
            v.str = string();
            return v;
        }
        if (lit("true")) return v.type = Json::boolean, v.b = true, v;
        if (lit("false")) return v.type = Json::boolean, v;
        if (lit("null")) return v;
        return number();
    }
    Json number() {
        const size_t b = i_;
        auto digits = [&] {
            const size_t d = i_;
            while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
            return i_ - d;
        };
        if (i_ < s_.size() && s_[i_] == '-') i_++;
        if (i_ < s_.size() && s_[i_] == '0') {
            i_++;
        } else if (digits() == 0) {
            fail("bad value");
        }
        if (i_ < s_.size() && s_[i_] == '.') {
            i_++;
            if (digits() == 0) fail("bad fraction");
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            i_++;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
            if (digits() == 0) fail("bad exponent");
        }
        Json v;
        v.type = Json::number;
        v.num = std::strtod(s_.substr(b, i_ - b).c_str(), nullptr);
        return v;
    }
    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; k++) {
            const char c = s_[i_++];
            if (!std::isxdigit(static_cast<unsigned char>(c))) fail("bad \\u escape");
            v = v * 16 + unsigned(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
        }
        return v;
    }
    std::string string() {
        i_++;  // opening quote
        std::string out;
        for (;;) {
            if (i_ >= s_.size()) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(s_[i_++]);
            if (c == '"') return out;
            if (c < 0x20) fail("raw control character in a string");
            if (c != '\\') {
                out += char(c);
                continue;
            }
            if (i_ >= s_.size()) fail("unterminated escape");
            const char e = s_[i_++];
            switch (e) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    const unsigned cp = hex4();
                    if (cp >= 0x80) fail("test parser handles ASCII \\u escapes only");
                    out += char(cp);
                    break;
                }
                default:
                    fail("bad escape");
            }
        }
    }
};

Json parse_json(const std::string& text) { return JsonParser(text).parse(); }

// ---------------------------------------------------------------------------- sample data

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<EpochMetrics> sample_epochs() {
    std::vector<EpochMetrics> out;
    for (const char* b : {"cpu", "cuda"}) {
        for (int e = 1; e <= 3; e++) {
            EpochMetrics m;
            m.backend = b;
            m.epoch = e;
            m.train_loss = 2.3 / e + (b[1] == 'u' ? 1e-4 : 0) + 1.0 / 3.0;
            m.train_acc = 0.5 + 0.1 * e;
            m.val_loss = 2.4 / e + 0.123456789012;
            m.val_top1 = 0.45 + 0.1 * e;
            m.val_top5 = 0.8 + 0.05 * e;
            m.seconds = b[1] == 'p' ? 49.6 : 1.15;
            m.img_per_s = 60000 / m.seconds;
            out.push_back(m);
        }
    }
    return out;
}

Report sample_report() {
    Report r;
    r.title = "baseline <on> \"Fashion-MNIST\" & more";
    r.facts = {{"machine", "2 cores & 8 GiB"}, {"GPU", "none <yet>"}, {"path", "C:\\data\ttab"}};
    r.epochs = sample_epochs();
    BackendSummary cpu{"cpu", 1210, 49.6, 0.912, {{"0 Conv2d(3, 32, 3x3)", 10, 20}, {"1 ReLU", 1.5, 2.5}},
                       0,     "",   0,    ""};
    BackendSummary cuda{"cuda", 52000, 1.15, 0.913, {{"0 Conv2d(3, 32, 3x3)", 1, 2}, {"1 ReLU", 0.5, 0.5}},
                        0,      "",    0,    ""};
    r.backends = {cpu, cuda};
    r.max_curve_difference = 1e-4;
    return r;
}

// Attribute values of `attr` on every <polyline> of an SVG.
std::vector<std::string> polyline_attr(const std::string& svg, const std::string& attr) {
    std::vector<std::string> out;
    const std::regex re("<polyline[^>]*\\s" + attr + "=\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1]);
    return out;
}

// The y-axis tick labels (right-aligned text) of a chart.
std::vector<double> y_ticks(const std::string& svg) {
    std::vector<double> out;
    const std::regex re("text-anchor=\"end\">([^<]*)<");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
        out.push_back(std::stod((*it)[1]));
    return out;
}

// Ticks are evenly spaced by 1, 2 or 5 x 10^k and cover [lo, hi].
void check_ticks(const std::vector<double>& t, double lo, double hi) {
    REQUIRE(t.size() >= 2);
    const double step = t[1] - t[0];
    REQUIRE(step > 0);
    for (size_t i = 1; i < t.size(); i++) CHECK(near(t[i] - t[i - 1], step, 1e-6));
    const double m = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    CHECK((near(m, 1, 1e-6) || near(m, 2, 1e-6) || near(m, 5, 1e-6)));
    CHECK(t.front() <= lo);
    CHECK(t.back() >= hi);
}

// Every polyline coordinate is a finite number inside the 720x420 canvas.
void check_points_inside(const std::string& svg) {
    for (const std::string& pts : polyline_attr(svg, "points")) {
        const std::regex num("(-?[0-9.]+),(-?[0-9.]+)");
        size_t n = 0;
        for (auto it = std::sregex_iterator(pts.begin(), pts.end(), num); it != std::sregex_iterator(); ++it, n++) {
            const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
            CHECK((x >= 0 && x <= 720 && y >= 0 && y <= 420));
        }
        CHECK(n > 0);
    }
}

}  // namespace

TEST_CASE("The test XML checker accepts good documents and rejects malformed ones", "[report][xml]") {
    CHECK(xml_problem("<a/>") == "");
    CHECK(xml_problem("<?xml version=\"1.0\"?>\n<!-- c --><a x='1' y=\"&amp;&#60;&#x3c;\">t &lt; u<b/></a>\n") == "");
    CHECK(xml_problem("<!DOCTYPE html>\n<html><body><p>x</p></body></html>") == "");
    CHECK(xml_problem("<a><b></a></b>") != "");
    CHECK(xml_problem("<a x=1/>") != "");
    CHECK(xml_problem("<a>&foo;</a>") != "");
    CHECK(xml_problem("<a>R&D</a>") != "");
    CHECK(xml_problem("<a/><b/>") != "");
    CHECK(xml_problem("<a>") != "");
    CHECK(xml_problem("<a>x < y</a>") != "");
    CHECK(xml_problem("<a x=\"1\" x=\"2\"/>") != "");
    CHECK(xml_problem("<a x=\"1\"y=\"2\"/>") != "");
    CHECK(xml_problem("text only") != "");
    CHECK(xml_problem("<a>bell \x07</a>") != "");
}

TEST_CASE("svg_line_chart draws every series with markers, ticks and a legend", "[report][svg]") {
    std::vector<Series> s{{"cpu train", {1, 2, 3, 4}, {2.0, 1.1, 0.8, 0.7}, false},
                          {"cpu val", {1, 2, 3, 4}, {2.1, 1.3, 1.0, 0.95}, true},
                          {"cuda train", {1, 2}, {2.0, 1.2}, false}};
    const std::string svg = svg_line_chart("Loss", "epoch", "loss", s);
    INFO(svg);
    CHECK(xml_problem(svg) == "");
    CHECK(count(svg, "<polyline") == 3);
    CHECK(count(svg, "<circle") >= 4 + 4 + 2);
    CHECK(count(svg, "stroke-dasharray") >= 1);
    for (const auto& x : s) CHECK_THAT(svg, Contains(">" + x.name + "<"));
    CHECK_THAT(svg, Contains(">epoch<"));
    CHECK_THAT(svg, Contains(">loss<"));
    CHECK_THAT(svg, Contains(">Loss<"));
    // The two cpu series share a colour; cuda has another.
    const auto colours = polyline_attr(svg, "stroke");
    REQUIRE(colours.size() == 3);
    CHECK(colours[0] == colours[1]);
    CHECK(colours[0] != colours[2]);
    check_ticks(y_ticks(svg), 0.7, 2.1);
    check_points_inside(svg);
}

TEST_CASE("svg_line_chart handles a single point, equal values, NaN and no data", "[report][svg]") {
    const double inf = std::numeric_limits<double>::infinity();
    SECTION("single point") {
        const std::string svg = svg_line_chart("one", "x", "y", {{"cpu train", {1}, {0.5}, false}});
        CHECK(xml_problem(svg) == "");
        CHECK(count(svg, "<polyline") == 1);
        CHECK(count(svg, "<circle") >= 1);
        check_ticks(y_ticks(svg), 0.5, 0.5);
        check_points_inside(svg);
    }
    SECTION("all equal") {
        for (double v : {0.0, 3.0, -2.5, 1e-12}) {
            const std::string svg = svg_line_chart("flat", "x", "y", {{"cpu val", {1, 2, 3}, {v, v, v}, true}});
            INFO(svg);
            CHECK(xml_problem(svg) == "");
            CHECK(count(svg, "<polyline") == 1);
            const auto t = y_ticks(svg);
            check_ticks(t, v, v);
            CHECK(t.front() < t.back());
            check_points_inside(svg);
        }
    }
    SECTION("non-finite values are skipped") {
        const std::string svg = svg_line_chart("non-finite", "x", "y",
                                               {{"cpu train", {1, 2, 3, 4}, {1.0, kNaN, inf, 0.5}, false},
                                                {"cuda train", {1, kNaN}, {kNaN, 2.0}, false},
                                                {"naive train", {1, 2}, {-inf, 0.75}, true}});
        INFO(svg);
        CHECK(xml_problem(svg) == "");
        CHECK(svg.find("nan") == std::string::npos);
        CHECK(svg.find("inf") == std::string::npos);
        CHECK(svg.find("NaN") == std::string::npos);
        // The cuda series has no plottable point: no polyline, but it stays in the legend.
        CHECK(count(svg, "<polyline") == 2);
        CHECK_THAT(svg, Contains(">cuda train<"));
        check_ticks(y_ticks(svg), 0.5, 1.0);
        check_points_inside(svg);
    }
    SECTION("no series") {
        const std::string svg = svg_line_chart("empty", "x", "y", {});
        CHECK(xml_problem(svg) == "");
        CHECK(count(svg, "<polyline") == 0);
        CHECK_THAT(svg, Contains("no data"));
    }
    SECTION("only empty series") {
        const std::string svg = svg_line_chart("empty", "x", "y", {{"cpu train", {}, {}, false}});
        CHECK(xml_problem(svg) == "");
        CHECK(count(svg, "<polyline") == 0);
        CHECK_THAT(svg, Contains("no data"));
    }
    SECTION("text is escaped") {
        const std::string svg =
            svg_line_chart("a <b> & \"c\"", "x's", "y & z", {{"cpu <1> & 'two'", {1, 2}, {1, 2}, false}});
        INFO(svg);
        CHECK(xml_problem(svg) == "");
        CHECK_THAT(svg, Contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        CHECK_THAT(svg, Contains("y &amp; z"));
        const std::string odd = svg_line_chart("control \x01 and bad UTF-8 \xff", "x", "y", {});
        CHECK(xml_problem(odd) == "");
        CHECK(odd.find('\x01') == std::string::npos);
        CHECK(odd.find('\xff') == std::string::npos);
    }
    SECTION("x and y of different lengths") {
        CHECK_THROWS_WITH(svg_line_chart("t", "x", "y", {{"cpu bad", {1, 2}, {1}, false}}),
                          Contains("cpu bad") && Contains("2 x values") && Contains("1 y values"));
    }
}

TEST_CASE("write_metrics_csv writes a header and one line per epoch that parse back", "[report][csv]") {
    auto epochs = sample_epochs();
    epochs[1].val_top5 = kNaN;
    const std::string dir = fresh_dir("csv");
    const std::string path = dir + "/metrics.csv";
    write_metrics_csv(path, epochs);
    std::ifstream f(path);
    std::string line;
    REQUIRE(std::getline(f, line));
    CHECK(line == "backend,epoch,train_loss,train_acc,val_loss,val_top1,val_top5,seconds,img_per_s");
    size_t n = 0;
    while (std::getline(f, line)) {
        REQUIRE(n < epochs.size());
        const EpochMetrics& e = epochs[n++];
        std::vector<std::string> fields;
        size_t start = 0;
        for (size_t comma; (comma = line.find(',', start)) != std::string::npos; start = comma + 1)
            fields.push_back(line.substr(start, comma - start));
        fields.push_back(line.substr(start));
        REQUIRE(fields.size() == 9);
        CHECK(fields[0] == e.backend);
        CHECK(std::stoi(fields[1]) == e.epoch);
        const double expected[] = {e.train_loss, e.train_acc, e.val_loss, e.val_top1,
                                   e.val_top5,   e.seconds,   e.img_per_s};
        for (int k = 0; k < 7; k++) {
            INFO("line " << n << " field " << k + 2 << ": " << fields[size_t(k) + 2]);
            CHECK(near(std::strtod(fields[size_t(k) + 2].c_str(), nullptr), expected[k], 1e-8));
        }
    }
    CHECK(n == epochs.size());
    // No temporary file is left behind.
    size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().filename().string().rfind("metrics.csv", 0) == 0) files++;
    CHECK(files == 1);
}

TEST_CASE("write_metrics_json writes valid JSON with escaped strings", "[report][json]") {
    Report r = sample_report();
    r.title = "quote \" backslash \\ newline \n control \x01 tab \t";
    r.epochs[2].val_loss = kNaN;
    r.epochs[1].val_loss = -std::numeric_limits<double>::infinity();
    r.epochs[0].train_loss = 1.0 / 3;
    const std::string dir = fresh_dir("json");
    const std::string path = dir + "/metrics.json";
    write_metrics_json(path, r);
    const std::string text = read_text(path);
    INFO(text);
    Json j;
    try {
        j = parse_json(text);
    } catch (const std::string& e) {
        FAIL("invalid JSON: " << e);
    }
    REQUIRE(j.type == Json::object);
    CHECK(j.at("title").str == r.title);
    const Json& facts = j.at("facts");
    REQUIRE(facts.obj.size() == r.facts.size());
    for (size_t i = 0; i < r.facts.size(); i++) {
        CHECK(facts.obj[i].first == r.facts[i].first);
        CHECK(facts.obj[i].second.str == r.facts[i].second);
    }
    const Json& epochs = j.at("epochs");
    REQUIRE(epochs.arr.size() == r.epochs.size());
    for (size_t i = 0; i < r.epochs.size(); i++) {
        const Json& e = epochs.arr[i];
        const EpochMetrics& m = r.epochs[i];
        CHECK(e.at("backend").str == m.backend);
        CHECK(e.at("epoch").num == m.epoch);
        CHECK(near(e.at("train_loss").num, m.train_loss));
        CHECK(near(e.at("train_acc").num, m.train_acc));
        if (!std::isfinite(m.val_loss)) {
            CHECK(e.at("val_loss").type == Json::null);
        } else {
            CHECK(near(e.at("val_loss").num, m.val_loss));
        }
        CHECK(near(e.at("val_top1").num, m.val_top1));
        CHECK(near(e.at("val_top5").num, m.val_top5));
        CHECK(near(e.at("seconds").num, m.seconds));
        CHECK(near(e.at("img_per_s").num, m.img_per_s));
    }
    const Json& backends = j.at("backends");
    REQUIRE(backends.arr.size() == 2);
    CHECK(backends.arr[1].at("backend").str == "cuda");
    CHECK(near(backends.arr[1].at("img_per_s").num, 52000));
    CHECK(near(backends.arr[0].at("final_val_top1").num, 0.912));
    REQUIRE(backends.arr[0].at("layers").arr.size() == 2);
    CHECK(backends.arr[0].at("layers").arr[0].at("layer").str == "0 Conv2d(3, 32, 3x3)");
    CHECK(near(backends.arr[0].at("layers").arr[0].at("backward_ms").num, 20));
    CHECK(near(j.at("max_curve_difference").num, 1e-4));

    // The members, in order.
    auto keys = [](const Json& o) {
        std::vector<std::string> out;
        for (const auto& member : o.obj) out.push_back(member.first);
        return out;
    };
    CHECK(keys(j) == std::vector<std::string>{"title", "facts", "epochs", "backends", "max_curve_difference"});
    CHECK(keys(epochs.arr[0]) == std::vector<std::string>{"backend", "epoch", "train_loss", "train_acc", "val_loss",
                                                          "val_top1", "val_top5", "seconds", "img_per_s"});
    CHECK(keys(backends.arr[0]) ==
          std::vector<std::string>{"backend", "img_per_s", "epoch_seconds", "final_val_top1", "layers"});
    CHECK(keys(backends.arr[0].at("layers").arr[0]) == std::vector<std::string>{"layer", "forward_ms", "backward_ms"});

    // Numbers carry 9 significant digits.
    CHECK(text.find("0.333333333,") != std::string::npos);
    CHECK(text.find("0.3333333333") == std::string::npos);

    // An empty report is valid JSON too, with every member.
    write_metrics_json(dir + "/empty.json", Report{});
    Json empty;
    REQUIRE_NOTHROW(empty = parse_json(read_text(dir + "/empty.json")));
    CHECK(empty.at("facts").type == Json::object);
    CHECK(empty.at("epochs").arr.empty());
    CHECK(empty.at("backends").arr.empty());

    // Invalid UTF-8 becomes U+FFFD (the test parser passes UTF-8 through).
    Report bad;
    bad.title =
        "a\xff"
        "b";
    write_metrics_json(dir + "/bad.json", bad);
    Json bad_doc;
    REQUIRE_NOTHROW(bad_doc = parse_json(read_text(dir + "/bad.json")));
    CHECK(bad_doc.at("title").str ==
          "a\xef\xbf\xbd"
          "b");
}

TEST_CASE("The test JSON parser rejects invalid JSON", "[report][json]") {
    for (const char* bad : {"{", "{\"a\":1,}", "[1 2]", "{'a':1}", "[01]", "[1.]", "[nan]", "\"a\nb\"", "[1] x"}) {
        INFO(bad);
        CHECK_THROWS(parse_json(bad));
    }
    CHECK(parse_json(" {\"a\": [1.5e-3, -0, true, null, \"x\\u0041\"]} ").at("a").arr[4].str == "xA");
}

TEST_CASE("write_charts writes loss.svg and accuracy.svg for every backend", "[report][svg]") {
    const std::string dir = fresh_dir("charts");
    write_charts(dir, sample_epochs());
    const std::string loss = read_text(dir + "/loss.svg");
    const std::string acc = read_text(dir + "/accuracy.svg");
    CHECK(xml_problem(loss) == "");
    CHECK(xml_problem(acc) == "");
    CHECK(count(loss, "<polyline") == 4);
    CHECK(count(acc, "<polyline") == 4);
    for (const char* name : {">cpu train<", ">cpu val<", ">cuda train<", ">cuda val<"})
        CHECK_THAT(loss, Contains(name));
    for (const char* name : {">cpu train<", ">cpu val top-1<", ">cuda train<", ">cuda val top-1<"})
        CHECK_THAT(acc, Contains(name));
    // A backend keeps its colour on both charts; train and val differ only by the dashes.
    const auto lc = polyline_attr(loss, "stroke"), ac = polyline_attr(acc, "stroke");
    REQUIRE(lc.size() == 4);
    CHECK(lc == ac);
    CHECK(lc[0] == lc[1]);
    CHECK(lc[0] != lc[2]);
    CHECK(polyline_attr(loss, "stroke-dasharray").size() == 2);
    // Loss: min 2.4/3 + 0.12 ~ 0.92, max ~ 2.52.
    check_ticks(y_ticks(loss), 2.4 / 3 + 0.123456789012, 2.4 + 0.123456789012);
    check_points_inside(loss);
    check_points_inside(acc);
}

TEST_CASE("write_report_html is well-formed, self-contained and has the tables", "[report][html]") {
    const Report r = sample_report();
    const std::string dir = fresh_dir("html");
    const std::string path = dir + "/report.html";
    write_report_html(path, r);
    const std::string html = read_text(path);
    INFO(html);
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(xml_problem(html) == "");
    CHECK_THAT(html, Contains("<style>"));
    CHECK(count(html, "<svg") == 4);  // loss, accuracy, the per-layer shares and speed-ups
    CHECK(count(html, "<?xml") == 0);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("src=") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
    CHECK(html.find("nan") == std::string::npos);
    // Title and facts, escaped.
    CHECK_THAT(html, Contains("baseline &lt;on&gt; &quot;Fashion-MNIST&quot; &amp; more"));
    CHECK_THAT(html, Contains(">2 cores &amp; 8 GiB<"));
    CHECK_THAT(html, Contains(">none &lt;yet&gt;<"));
    // Comparison: cuda over cpu, from the summaries' throughput.
    CHECK_THAT(html, Contains(">" + fmt("%.1fx", 52000.0 / 1210.0) + "<"));
    CHECK_THAT(html, Contains(">1.0x<"));
    CHECK_THAT(html, Contains(">0.9120<"));
    // Per layer: both backends' times and the GPU's speed-up from the summed forward + backward times.
    CHECK_THAT(html, Contains(">0 Conv2d(3, 32, 3x3)<"));
    CHECK_THAT(html, Contains(">1 ReLU<"));
    CHECK_THAT(html, Contains(">cuda vs cpu<"));
    CHECK_THAT(html, Contains("Speed-up per layer over cpu"));
    CHECK_THAT(html, Contains(">" + fmt("%.1fx", (10.0 + 20.0) / (1.0 + 2.0)) + "<"));
    CHECK_THAT(html, Contains(">" + fmt("%.1fx", (1.5 + 2.5) / (0.5 + 0.5)) + "<"));
    // Charts inline, with their legends.
    CHECK_THAT(html, Contains(">cuda val top-1<"));
    CHECK(count(html, "<polyline") == 8);

    // A report with nothing in it is still a valid page.
    write_report_html(dir + "/empty.html", Report{});
    const std::string empty = read_text(dir + "/empty.html");
    CHECK(xml_problem(empty) == "");
    CHECK(count(empty, "no data") == 2);
}

TEST_CASE("comparison_table and layer_table align their columns", "[report][table]") {
    Report r = sample_report();
    r.backends.insert(r.backends.begin(), BackendSummary{"naive", 95.5, 628.0, 0.911, {}, 0, "", 0, ""});
    const std::string t = comparison_table(r);
    INFO(t);
    std::vector<std::string> lines;
    for (size_t b = 0, e; (e = t.find('\n', b)) != std::string::npos; b = e + 1) lines.push_back(t.substr(b, e - b));
    REQUIRE(lines.size() == 4);
    // The last column is right-aligned, so every line has the same length.
    for (const auto& l : lines) CHECK(l.size() == lines[0].size());
    CHECK_THAT(lines[0], Contains("speed-up vs cpu"));
    CHECK(lines[1].rfind("naive", 0) == 0);
    CHECK_THAT(lines[1], Contains(fmt("%.2fx", 95.5 / 1210.0)));
    CHECK_THAT(lines[2], Contains("1.0x"));
    CHECK_THAT(lines[3], Contains(fmt("%.1fx", 52000.0 / 1210.0)));
    CHECK_THAT(lines[3], Contains("52000"));

    // Without "cpu", the slowest CPU backend is the baseline.
    Report r2 = r;
    r2.backends.erase(r2.backends.begin() + 1);
    CHECK_THAT(comparison_table(r2), Contains("speed-up vs naive") && Contains(fmt("%.1fx", 52000.0 / 95.5)));

    const std::string lt = layer_table(r);
    INFO(lt);
    CHECK(count(lt, "\n") == 3);
    CHECK_THAT(lt,
               Contains("cuda vs cpu") && Contains("0 Conv2d(3, 32, 3x3)") && Contains("10.0x") && Contains("4.0x"));
    CHECK(lt.find("naive") == std::string::npos);  // no layer times for naive: no columns
    Report cpu_only = r;
    cpu_only.backends.pop_back();
    CHECK(layer_table(cpu_only).find(" vs ") == std::string::npos);
    // Without "cpu" layer times the slowest CPU backend with them is the reference.
    Report naive_cuda = r;
    naive_cuda.backends[0].layers = {{"0 Conv2d(3, 32, 3x3)", 100, 200}, {"1 ReLU", 10, 10}, {"whole model", 120, 215}};
    naive_cuda.backends.erase(naive_cuda.backends.begin() + 1);
    const std::string nt = layer_table(naive_cuda);
    INFO(nt);
    CHECK_THAT(nt, Contains("cuda vs naive") && Contains("100.0x") && Contains("20.0x"));
}

TEST_CASE("progress_line shows the bar, counts, rates and ETA", "[report][progress]") {
    const std::string p = progress_line("cpu", 2, 10, 30000, 60000, 812.4, 0.41234, 0.8531, 41, 24);
    INFO(p);
    CHECK(p.rfind("cpu", 0) == 0);
    CHECK_THAT(p, Contains("epoch 2/10"));
    CHECK_THAT(p, Contains("[" + std::string(12, '#') + std::string(12, '.') + "]"));
    CHECK_THAT(p, Contains("30000/60000"));
    CHECK_THAT(p, Contains("812 img/s"));
    CHECK_THAT(p, Contains("loss 0.4123"));
    CHECK_THAT(p, Contains("acc 0.853"));
    CHECK_THAT(p, Contains("ETA 0:41"));
    CHECK_THAT(progress_line("cuda", 1, 1, 1, 4, 1, 1, 1, 3725), Contains("ETA 1:02:05"));
    CHECK_THAT(progress_line("cuda", 1, 1, 1, 4, 1, 1, 1, 59.6), Contains("ETA 1:00"));
    CHECK_THAT(progress_line("cuda", 1, 1, 4, 4, 1, 1, 1, 0, 8), Contains("[########]"));
    CHECK_THAT(progress_line("cuda", 1, 1, 0, 0, 1, 1, 1, 0, 8), Contains("[........]"));
    const std::string odd = progress_line("cpu", 1, 1, 1, 2, kNaN, kNaN, kNaN, kNaN);
    CHECK(odd.find("nan") == std::string::npos);
}

TEST_CASE("Report writers name the path when they cannot write", "[report][errors]") {
    const std::string dir = fresh_dir("errors");
    const std::string missing = dir + "/no/such/dir/metrics.csv";
    CHECK_THROWS_AS(write_metrics_csv(missing, sample_epochs()), dyad::Error);
    CHECK_THROWS_WITH(write_metrics_csv(missing, sample_epochs()), Contains(missing));
    CHECK_THROWS_WITH(write_metrics_json(missing, sample_report()), Contains(missing));
    CHECK_THROWS_WITH(write_report_html(missing, sample_report()), Contains(missing));
    // A directory where a file is: write_charts names it.
    const std::string file = dir + "/not_a_dir";
    std::ofstream(file) << "x";
    CHECK_THROWS_WITH(write_charts(file + "/sub", sample_epochs()), Contains(file));
}

namespace {

// The <rect> elements inside the bars (class "bar") of a bar chart: x, y, width, height, fill.
struct Rect {
    double x, y, w, h;
    std::string fill;
};
std::vector<Rect> bar_rects(const std::string& svg) {
    std::vector<Rect> out;
    const std::regex re(
        "<rect x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\" height=\"([0-9.]+)\" fill=\"(#[0-9a-f]+)\"");
    for (size_t at = svg.find("<g class=\"bar\">"); at != std::string::npos;
         at = svg.find("<g class=\"bar\">", at + 1)) {
        const std::string g = svg.substr(at, svg.find("</g>", at) - at);
        for (auto it = std::sregex_iterator(g.begin(), g.end(), re); it != std::sregex_iterator(); ++it)
            out.push_back(
                {std::stod((*it)[1]), std::stod((*it)[2]), std::stod((*it)[3]), std::stod((*it)[4]), (*it)[5]});
    }
    return out;
}

}  // namespace

TEST_CASE("svg_stacked_bars draws each group's bars as shares of the group's total", "[report][svg]") {
    // Two groups 100x apart: each group's two bars fill the plot height between them, in proportion.
    const std::vector<std::string> segments{"conv", "relu", "linear"};
    const std::vector<StackedBar> bars{{"naive", "forward", {60, 20, 20}},
                                       {"naive", "backward", {90, 10, 0}},
                                       {"cpu", "forward", {0.6, 0.2, 0.2}},
                                       {"cpu", "backward", {0.9, 0.1, 0}}};
    const std::string svg = svg_stacked_bars("Where the time goes", "ms", segments, bars);
    INFO(svg);
    CHECK(xml_problem(svg) == "");
    const auto rects = bar_rects(svg);
    REQUIRE(rects.size() == 10);  // zero segments draw nothing
    // naive's forward bar: 60, 20, 20 of naive's 200 ms; its backward: 90, 10.
    const double unit = rects[0].h / 60.0;
    CHECK(rects[1].h == Approx(20 * unit).margin(0.02));
    CHECK(rects[3].h == Approx(90 * unit).margin(0.02));
    double naive_total = 0, cpu_total = 0;
    for (size_t i = 0; i < 5; i++) naive_total += rects[i].h;
    for (size_t i = 5; i < 10; i++) cpu_total += rects[i].h;
    CHECK(naive_total == Approx(cpu_total).margin(0.05));  // the same shares, 100x apart
    CHECK(naive_total == Approx(200 * unit).margin(0.05));
    // Segments keep their colour across bars and stack bottom-up without gaps.
    CHECK(rects[0].fill == rects[3].fill);
    CHECK(rects[0].fill != rects[1].fill);
    CHECK(rects[1].y + rects[1].h == Approx(rects[0].y).margin(0.02));
    // Totals: above each bar and under each group.
    CHECK_THAT(svg, Contains(">100 ms<") && Contains(">200 ms<") && Contains(">2.00 ms<") && Contains(">1.00 ms<"));
    CHECK_THAT(svg, Contains(">naive</text>") && Contains(">cpu</text>") && Contains(">linear</text>"));
    CHECK_THROWS_WITH(svg_stacked_bars("t", "ms", segments, {{"g", "b", {1, -1, 0}}}), Contains("negative"));
    CHECK(xml_problem(svg_stacked_bars("empty", "ms", {}, {})) == "");
}

TEST_CASE("svg_bar_chart draws speed-ups on a log axis with a reference line", "[report][svg]") {
    const std::string svg =
        svg_bar_chart("Speed-up per layer", "speed-up", {"conv", "relu", "fc"}, {{"cuda vs cpu", {100, 10, NAN}}}, 1.0);
    INFO(svg);
    CHECK(xml_problem(svg) == "");
    const auto rects = bar_rects(svg);
    REQUIRE(rects.size() == 2);  // no bar for the missing value
    // Log axis from a decade below the smallest value: 100x is three decades long, 10x two.
    CHECK(rects[0].w / rects[1].w == Approx(3.0 / 2.0).epsilon(1e-3));
    CHECK_THAT(svg, Contains(">100.0x<") && Contains(">10.0x<") && Contains(">-<"));
    // The reference line sits at 1x: one decade from the left edge, a third of the 100x bar.
    const std::regex ref("class=\"reference\" x1=\"([0-9.]+)\"");
    std::smatch m;
    REQUIRE(std::regex_search(svg, m, ref));
    CHECK(std::stod(m[1]) - rects[0].x == Approx(rects[0].w / 3).margin(0.02));
    CHECK_THROWS_WITH(svg_bar_chart("t", "x", {"a"}, {{"s", {1, 2}}}, 1), Contains("2 values for 1 labels"));
}

TEST_CASE("group_layers keeps layers by name, or by type when there are many, plus the rest", "[report]") {
    const std::vector<LayerTime> a{{"0 Conv2d(3, 8)", 4, 8}, {"1 ReLU", 1, 1}, {"whole model", 7, 10}};
    const std::vector<LayerTime> b{{"0 Conv2d(3, 8)", 2, 2}, {"1 ReLU", 1, 1}, {"whole model", 3, 3}};
    const LayerGroups g = group_layers({a, b});
    REQUIRE(g.rows == std::vector<std::string>{"0 Conv2d(3, 8)", "1 ReLU", "rest of the model"});
    CHECK(g.forward[0] == std::vector<double>{4, 1, 2});  // 7 - 5 left over
    CHECK(g.backward[0] == std::vector<double>{8, 1, 1});
    CHECK(g.forward[1] == std::vector<double>{2, 1, 0});  // never below 0
    // Past max_rows: by type, summed.
    std::vector<LayerTime> many;
    for (int i = 0; i < 6; i++) many.push_back({std::to_string(i) + (i % 2 ? " ReLU" : " Conv2d(8, 8)"), 1.0 + i, 1});
    const LayerGroups t = group_layers({many}, 4);
    REQUIRE(t.rows == std::vector<std::string>{"Conv2d", "ReLU"});  // no whole-model row: no rest
    CHECK(t.forward[0] == std::vector<double>{1 + 3 + 5, 2 + 4 + 6});
}

TEST_CASE("report.html says when the backends' curves are identical", "[report][html]") {
    Report r = sample_report();
    CHECK(!curves_identical(r.epochs));
    const std::string dir = fresh_dir("identical");
    write_report_html(dir + "/differ.html", r);
    CHECK(read_text(dir + "/differ.html").find("curves are identical") == std::string::npos);
    for (auto& e : r.epochs)
        if (e.backend == "cuda") e.train_loss = 2.3 / e.epoch + 1.0 / 3.0;  // sample_epochs' cpu loss, exactly
    CHECK(curves_identical(r.epochs));
    write_report_html(dir + "/same.html", r);
    const std::string html = read_text(dir + "/same.html");
    CHECK(xml_problem(html) == "");
    CHECK_THAT(html, Contains("curves are identical"));
    // One backend alone is never "identical".
    std::vector<EpochMetrics> one;
    for (const auto& e : r.epochs)
        if (e.backend == "cpu") one.push_back(e);
    CHECK(!curves_identical(one));
}
