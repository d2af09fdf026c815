// Recursive-descent JSON parser (depth-limited) and a compact writer.
#include "lib/io/json.h"

#include <cstdio>

namespace dyad::io::json {

const char* type_name(Value::Type t) {
    switch (t) {
        case Value::Type::null:
            return "null";
        case Value::Type::boolean:
            return "boolean";
        case Value::Type::integer:
            return "integer";
        case Value::Type::string:
            return "string";
        case Value::Type::array:
            return "array";
        case Value::Type::object:
            return "object";
    }
    return "?";
}

ParseError::ParseError(std::string problem_, size_t offset_, int line)
    : Error(detail::str("json.cpp:", line, ": json: ", problem_, " at byte ", offset_)),
      problem(std::move(problem_)),
      offset(offset_) {}

namespace {

class Parser {
public:
    explicit Parser(const std::string& text) : s_(text) {}

    Value document() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (pos_ != s_.size()) fail("unexpected " + describe(pos_) + " after the value");
        return v;
    }

private:
    // The error names the line of the check that failed (the caller's line).
    [[noreturn]] void fail(const std::string& problem, int line = __builtin_LINE()) const {
        throw ParseError(problem, pos_, line);
    }
    [[noreturn]] void fail_at(const std::string& problem, size_t at, int line = __builtin_LINE()) const {
        throw ParseError(problem, at, line);
    }

    std::string describe(size_t at) const {
        if (at >= s_.size()) return "end of input";
        const unsigned char c = static_cast<unsigned char>(s_[at]);
        char buf[32];
        if (c >= 0x20 && c < 0x7f) {
            std::snprintf(buf, sizeof buf, "character '%c'", c);
        } else {
            std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
        }
        return buf;
    }

    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            pos_++;
    }

    void expect(char c) {
        if (pos_ >= s_.size() || s_[pos_] != c) fail(std::string("expected '") + c + "' but found " + describe(pos_));
        pos_++;
    }

    Value value(int depth) {
        if (pos_ >= s_.size()) fail("unexpected end of input");
        switch (s_[pos_]) {
            case '{':
                return object(depth + 1);
            case '[':
                return array(depth + 1);
            case '"': {
                Value v;
                v.type = Value::Type::string;
                v.string = string();
                return v;
            }
            case 't':
                return literal("true", Value::Type::boolean, true);
            case 'f':
                return literal("false", Value::Type::boolean, false);
            case 'n':
                return literal("null", Value::Type::null, false);
            default:
                if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return number();
                fail("unexpected " + describe(pos_));
        }
    }

    Value literal(const char* word, Value::Type type, bool b) {
        const std::string w = word;
        if (s_.compare(pos_, w.size(), w) != 0) fail("invalid literal (expected " + w + ")");
        pos_ += w.size();
        Value v;
        v.type = type;
        v.boolean = b;
        return v;
    }

    Value number() {
        const size_t start = pos_;
        bool negative = false;
        if (s_[pos_] == '-') {
            negative = true;
            pos_++;
        }
        if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') fail("expected a digit");
        if (s_[pos_] == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
            fail("leading zeros are not allowed");
        // Accumulate the magnitude as unsigned: up to 2^63 for a negative value, 2^63 - 1 otherwise.
        const uint64_t limit = negative ? (uint64_t(1) << 63) : (uint64_t(1) << 63) - 1;
        uint64_t mag = 0;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
            const uint64_t d = uint64_t(s_[pos_] - '0');
            if (mag > (limit - d) / 10) fail_at("integer out of the 64-bit range", start);
            mag = mag * 10 + d;
            pos_++;
        }
        if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
            fail_at("floating-point numbers are not supported", start);
        Value v;
        v.type = Value::Type::integer;
        v.integer = negative ? (mag == (uint64_t(1) << 63) ? INT64_MIN : -int64_t(mag)) : int64_t(mag);
        return v;
    }

    unsigned hex4() {
        if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
            const char c = s_[pos_ + size_t(i)];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= unsigned(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= unsigned(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= unsigned(c - 'A' + 10);
            } else {
                fail_at("invalid hex digit in \\u escape", pos_ + size_t(i));
            }
        }
        pos_ += 4;
        return v;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xc0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out += char(0xe0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        } else {
            out += char(0xf0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3f));
            out += char(0x80 | ((cp >> 6) & 0x3f));
            out += char(0x80 | (cp & 0x3f));
        }
    }

    // Checks one UTF-8 sequence starting at pos_ (a byte >= 0x80) and copies it.
    void utf8_sequence(std::string& out) {
        const size_t start = pos_;
        const unsigned char c = static_cast<unsigned char>(s_[pos_]);
        int extra;
        unsigned cp;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3, cp = c & 0x07;
        } else {
            fail("invalid UTF-8 byte");
        }
        for (int i = 1; i <= extra; i++) {
            if (start + size_t(i) >= s_.size()) fail_at("truncated UTF-8 sequence", start);
            const unsigned char cc = static_cast<unsigned char>(s_[start + size_t(i)]);
            if ((cc & 0xc0) != 0x80) fail_at("invalid UTF-8 sequence", start);
            cp = (cp << 6) | (cc & 0x3f);
        }
        const unsigned min_cp = extra == 1 ? 0x80 : extra == 2 ? 0x800 : 0x10000;
        if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail_at("invalid UTF-8 sequence", start);
        out.append(s_, start, size_t(extra) + 1);
        pos_ = start + size_t(extra) + 1;
    }

    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                pos_++;
                return out;
            }
            if (c < 0x20) fail("unescaped control character in a string");
            if (c >= 0x80) {
                utf8_sequence(out);
                continue;
            }
            if (c != '\\') {
                out += char(c);
                pos_++;
                continue;
            }
            const size_t esc = pos_;
            pos_++;
            if (pos_ >= s_.size()) fail("unterminated string");
            const char e = s_[pos_++];
            switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
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
                    unsigned cp = hex4();
                    if (cp >= 0xdc00 && cp <= 0xdfff) fail_at("unpaired low surrogate in \\u escape", esc);
                    if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (s_.compare(pos_, 2, "\\u") != 0) fail_at("unpaired high surrogate in \\u escape", esc);
                        pos_ += 2;
                        const unsigned lo = hex4();
                        if (lo < 0xdc00 || lo > 0xdfff) fail_at("invalid surrogate pair in \\u escape", esc);
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default:
                    fail_at("invalid escape sequence", esc);
            }
        }
    }

    void check_depth(int depth) const {
        if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }

    Value array(int depth) {
        check_depth(depth);
        expect('[');
        Value v;
        v.type = Value::Type::array;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') {
            pos_++;
            return v;
        }
        for (;;) {
            skip_ws();
            v.array.push_back(value(depth));
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ',') {
                pos_++;
                continue;
            }
            if (pos_ < s_.size() && s_[pos_] == ']') {
                pos_++;
                return v;
            }
            fail("expected ',' or ']' but found " + describe(pos_));
        }
    }

    Value object(int depth) {
        check_depth(depth);
        expect('{');
        Value v;
        v.type = Value::Type::object;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') {
            pos_++;
            return v;
        }
        for (;;) {
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a member name but found " + describe(pos_));
            std::string key = string();
            skip_ws();
            expect(':');
            skip_ws();
            Value member = value(depth);
            v.object.emplace_back(std::move(key), std::move(member));
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ',') {
                pos_++;
                continue;
            }
            if (pos_ < s_.size() && s_[pos_] == '}') {
                pos_++;
                return v;
            }
            fail("expected ',' or '}' but found " + describe(pos_));
        }
    }

    const std::string& s_;
    size_t pos_ = 0;
};

}  // namespace

Value parse(const std::string& text) { return Parser(text).document(); }

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        const unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    return out + "\"";
}

std::string write(const Value& v) {
    switch (v.type) {
        case Value::Type::null:
            return "null";
        case Value::Type::boolean:
            return v.boolean ? "true" : "false";
        case Value::Type::integer:
            return std::to_string(v.integer);
        case Value::Type::string:
            return quote(v.string);
        case Value::Type::array: {
            std::string out = "[";
            for (size_t i = 0; i < v.array.size(); i++) out += (i ? "," : "") + write(v.array[i]);
            return out + "]";
        }
        case Value::Type::object: {
            std::string out = "{";
            for (size_t i = 0; i < v.object.size(); i++)
                out += (i ? "," : "") + quote(v.object[i].first) + ":" + write(v.object[i].second);
            return out + "}";
        }
    }
    return "null";
}

}  // namespace dyad::io::json
