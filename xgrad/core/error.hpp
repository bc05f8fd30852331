#pragma once
// xgrad::Error: the one exception type of the public API. Messages name the layer or op,
// the argument and the shapes involved, e.g.
//   "matmul: inner dimensions differ: a is (2, 3), b is (4, 5)".
#include <sstream>
#include <stdexcept>
#include <string>

namespace xgrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates anything streamable into one string: cat("size must be >= 1, got ", size).
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

namespace detail {
// Out of line and cold, so a check costs its test and a never-taken branch at the call site.
template <class... Args>
[[noreturn]] __attribute__((noinline, cold)) void fail(const Args&... args) {
  throw Error(cat(args...));
}
}  // namespace detail

}  // namespace xgrad

// Throws xgrad::Error(cat(...)) when cond is false. A macro so that the message arguments
// (shape strings, layer descriptions) are evaluated only when the check fails; a passing check
// builds no string.
#define XGRAD_CHECK(cond, ...)                             \
  do {                                                     \
    if (!(cond)) ::xgrad::detail::fail(__VA_ARGS__);       \
  } while (false)
