#include "base/json_syntax.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace mixcal {
namespace {

class Checker {
 public:
  explicit Checker(absl::string_view t) : t_(t) {}

  absl::Status Run() {
    Space();
    if (!Value(0)) return Error();
    Space();
    if (i_ != t_.size()) {
      why_ = "text after the JSON value";
      return Error();
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error() const {
    int line = 1, column = 1;
    for (size_t k = 0; k < i_ && k < t_.size(); ++k) {
      if (t_[k] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("line ", line, ", column ", column, ": ", why_));
  }
  bool Fail(std::string why) {
    why_ = std::move(why);
    return false;
  }
  void Space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' ||
                              t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  bool Literal(absl::string_view word) {
    if (t_.substr(i_, word.size()) != word)
      return Fail("expected a value (a string, number, object, array, true, "
                  "false or null)");
    i_ += word.size();
    return true;
  }
  bool Value(int depth) {
    if (depth > 200) return Fail("nested too deeply");
    if (i_ >= t_.size()) return Fail("the text ends where a value should be");
    switch (t_[i_]) {
      case '{': return Object(depth);
      case '[': return Array(depth);
      case '"': return String();
      case 't': return Literal("true");
      case 'f': return Literal("false");
      case 'n': return Literal("null");
      default: return Number();
    }
  }
  bool Object(int depth) {
    ++i_;
    Space();
    if (i_ < t_.size() && t_[i_] == '}') return ++i_, true;
    while (true) {
      Space();
      if (i_ < t_.size() && t_[i_] == '}') return Fail("a trailing comma before '}'");
      if (i_ >= t_.size() || t_[i_] != '"') return Fail("expected a quoted key");
      if (!String()) return false;
      Space();
      if (i_ >= t_.size() || t_[i_] != ':') return Fail("expected ':' after the key");
      ++i_;
      Space();
      if (!Value(depth + 1)) return false;
      Space();
      if (i_ < t_.size() && t_[i_] == ',') { ++i_; continue; }
      if (i_ < t_.size() && t_[i_] == '}') return ++i_, true;
      return Fail("expected ',' or '}'");
    }
  }
  bool Array(int depth) {
    ++i_;
    Space();
    if (i_ < t_.size() && t_[i_] == ']') return ++i_, true;
    while (true) {
      Space();
      if (i_ < t_.size() && t_[i_] == ']') return Fail("a trailing comma before ']'");
      if (!Value(depth + 1)) return false;
      Space();
      if (i_ < t_.size() && t_[i_] == ',') { ++i_; continue; }
      if (i_ < t_.size() && t_[i_] == ']') return ++i_, true;
      return Fail("expected ',' or ']'");
    }
  }
  bool String() {
    ++i_;  // the opening quote
    while (i_ < t_.size()) {
      const unsigned char c = t_[i_];
      if (c == '"') return ++i_, true;
      if (c < 0x20) return Fail("a control character inside a string");
      if (c == '\\') {
        if (++i_ >= t_.size()) break;
        const char e = t_[i_];
        if (e == 'u') {
          for (int k = 1; k <= 4; ++k)
            if (i_ + k >= t_.size() || !absl::ascii_isxdigit(t_[i_ + k]))
              return Fail("\\u needs four hex digits");
          i_ += 4;
        } else if (std::string("\"\\/bfnrt").find(e) == std::string::npos) {
          return Fail("an unknown escape in a string");
        }
      }
      ++i_;
    }
    return Fail("a string that never ends");
  }
  bool Number() {
    const size_t start = i_;
    if (i_ < t_.size() && t_[i_] == '-') ++i_;
    if (i_ < t_.size() && t_[i_] == '0') {
      ++i_;
    } else if (i_ < t_.size() && absl::ascii_isdigit(t_[i_])) {
      while (i_ < t_.size() && absl::ascii_isdigit(t_[i_])) ++i_;
    } else {
      i_ = start;
      return Fail("expected a value (a string, number, object, array, true, "
                  "false or null)");
    }
    if (i_ < t_.size() && t_[i_] == '.') {
      ++i_;
      if (i_ >= t_.size() || !absl::ascii_isdigit(t_[i_]))
        return Fail("a digit must follow the decimal point");
      while (i_ < t_.size() && absl::ascii_isdigit(t_[i_])) ++i_;
    }
    if (i_ < t_.size() && (t_[i_] == 'e' || t_[i_] == 'E')) {
      ++i_;
      if (i_ < t_.size() && (t_[i_] == '+' || t_[i_] == '-')) ++i_;
      if (i_ >= t_.size() || !absl::ascii_isdigit(t_[i_]))
        return Fail("an exponent needs digits");
      while (i_ < t_.size() && absl::ascii_isdigit(t_[i_])) ++i_;
    }
    return true;
  }

  absl::string_view t_;
  size_t i_ = 0;
  std::string why_;
};

}  // namespace

absl::Status CheckJsonSyntax(absl::string_view text) {
  return Checker(text).Run();
}

}  // namespace mixcal
