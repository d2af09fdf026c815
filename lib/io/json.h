// A small strict JSON reader and writer, enough for safetensors headers: objects (members kept in file
// order, duplicates kept so the caller can reject them), arrays, strings (all escapes, \uXXXX with
// surrogate pairs, UTF-8 checked), 64-bit integers (overflow checked), true, false, null. Numbers with
// a fraction or an exponent are rejected: no header needs them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dyad/error.h"

namespace dyad::io::json {

struct Value {
    enum class Type { null, boolean, integer, string, array, object };
    Type type = Type::null;
    bool boolean = false;
    int64_t integer = 0;
    std::string string;
    std::vector<Value> array;
    std::vector<std::pair<std::string, Value>> object;

    bool is_object() const { return type == Type::object; }
    bool is_array() const { return type == Type::array; }
    bool is_string() const { return type == Type::string; }
    bool is_integer() const { return type == Type::integer; }
};

// "object", "array", ...
const char* type_name(Value::Type t);

// A syntax error: `problem` says what is wrong and `offset` is the byte where it was found. what() reads
// "json.cpp:<line>: json: <problem> at byte <offset>".
struct ParseError : Error {
    ParseError(std::string problem_, size_t offset_, int line);
    std::string problem;
    size_t offset;
};

// Nesting deeper than this is a ParseError (no recursion without bound on hostile input).
constexpr int kMaxDepth = 64;

// Parses exactly one value; whitespace may surround it, anything else after it is an error.
Value parse(const std::string& text);

// `s` as a JSON string literal, quotes included. Control characters, '"' and '\' are escaped; other
// bytes (UTF-8) pass through.
std::string quote(const std::string& s);

// Compact serialisation (no spaces), members in their stored order.
std::string write(const Value& v);

}  // namespace dyad::io::json
