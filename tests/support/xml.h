// A small XML well-formedness checker for the tests of the programs' SVG and HTML outputs (report.html,
// study.html, the charts), shown to reject malformed input in tests/examples/test_report.cpp.
#pragma once
#include <cctype>
#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace dyad::test {

// Returns "" when `doc` is a well-formed XML document (optional XML declaration, comments and a DOCTYPE
// without an internal subset before the single root element, comments after it), else what is wrong.
class XmlChecker {
public:
    explicit XmlChecker(const std::string& doc) : s_(doc) {}

    std::string check() {
        for (char c : s_) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') return "a control character XML forbids";
        }
        try {
            ws();
            if (starts("<?xml")) skip_past("?>");
            misc(true);
            if (!starts("<") || starts("</")) return "no root element";
            element();
            misc(false);
            if (i_ != s_.size()) return "content after the root element at " + std::to_string(i_);
            return "";
        } catch (const std::string& e) {
            return e + " at byte " + std::to_string(i_);
        }
    }

private:
    const std::string& s_;
    size_t i_ = 0;

    bool starts(const char* p) const { return s_.compare(i_, std::strlen(p), p) == 0; }
    void ws() {
        while (i_ < s_.size() && std::strchr(" \t\r\n", s_[i_])) i_++;
    }
    void skip_past(const char* end) {
        const size_t p = s_.find(end, i_);
        if (p == std::string::npos) throw std::string("unterminated construct (missing ") + end + ")";
        i_ = p + std::strlen(end);
    }
    void comment() {
        i_ += 4;
        const size_t p = s_.find("--", i_);
        if (p == std::string::npos || s_.compare(p, 3, "-->") != 0) throw std::string("bad comment");
        i_ = p + 3;
    }
    void misc(bool doctype_allowed) {
        for (;;) {
            ws();
            if (starts("<!--")) {
                comment();
            } else if (doctype_allowed && starts("<!DOCTYPE")) {
                const size_t gt = s_.find('>', i_), bracket = s_.find('[', i_);
                if (gt == std::string::npos || bracket < gt) throw std::string("unsupported DOCTYPE");
                i_ = gt + 1;
                doctype_allowed = false;
            } else {
                return;
            }
        }
    }
    static bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
    static bool name_char(char c) {
        return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
    }
    std::string name() {
        if (i_ >= s_.size() || !name_start(s_[i_])) throw std::string("bad name");
        const size_t b = i_;
        while (i_ < s_.size() && name_char(s_[i_])) i_++;
        return s_.substr(b, i_ - b);
    }
    void entity() {
        const size_t semi = s_.find(';', i_);
        if (semi == std::string::npos || semi - i_ > 12) throw std::string("bad entity");
        const std::string e = s_.substr(i_ + 1, semi - i_ - 1);
        static const std::set<std::string> named{"amp", "lt", "gt", "quot", "apos"};
        bool ok = named.count(e) > 0;
        if (!ok && e.size() >= 2 && e[0] == '#') {
            const bool hex = e[1] == 'x';
            const std::string digits = e.substr(hex ? 2 : 1);
            ok = !digits.empty();
            for (char c : digits)
                ok = ok &&
                     (hex ? std::isxdigit(static_cast<unsigned char>(c)) : std::isdigit(static_cast<unsigned char>(c)));
        }
        if (!ok) throw std::string("unknown entity &") + e + ";";
        i_ = semi + 1;
    }
    // The root element and everything inside it, without recursion.
    void element() {
        std::vector<std::string> open;
        do {
            if (starts("<!--")) {
                comment();
            } else if (starts("</")) {
                i_ += 2;
                const std::string n = name();
                ws();
                if (!starts(">")) throw std::string("bad end tag");
                i_++;
                if (open.empty() || open.back() != n) throw std::string("mismatched end tag </") + n + ">";
                open.pop_back();
            } else if (starts("<")) {
                if (starts("<!") || starts("<?")) throw std::string("unsupported markup");
                i_++;
                const std::string n = name();
                std::set<std::string> attrs;
                for (;;) {
                    const size_t before = i_;
                    ws();
                    if (starts("/>")) {
                        i_ += 2;
                        break;
                    }
                    if (starts(">")) {
                        i_++;
                        open.push_back(n);
                        break;
                    }
                    if (i_ == before) throw std::string("missing space before an attribute");
                    const std::string a = name();
                    if (!attrs.insert(a).second) throw std::string("duplicate attribute ") + a;
                    ws();
                    if (!starts("=")) throw std::string("attribute without '='");
                    i_++;
                    ws();
                    if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) throw std::string("unquoted attribute");
                    const char q = s_[i_++];
                    while (i_ < s_.size() && s_[i_] != q) {
                        if (s_[i_] == '<') throw std::string("'<' in an attribute value");
                        if (s_[i_] == '&') {
                            entity();
                        } else {
                            i_++;
                        }
                    }
                    if (i_ >= s_.size()) throw std::string("unterminated attribute value");
                    i_++;
                }
            } else if (s_[i_] == '&') {
                entity();
            } else if (starts("]]>")) {
                throw std::string("']]>' in text");
            } else {
                i_++;
            }
            if (!open.empty() && i_ >= s_.size()) throw std::string("unclosed element <") + open.back() + ">";
        } while (!open.empty());
    }
};

inline std::string xml_problem(const std::string& doc) { return XmlChecker(doc).check(); }

}  // namespace dyad::test
