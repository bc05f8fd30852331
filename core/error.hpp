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

// Throws xgrad::Error(cat(args...)) when cond is false. A function, not a macro: the message
// arguments are evaluated only on failure because callers pass cheap values.
template <class... Args>
void check(bool cond, const Args&... args) {
  if (!cond) throw Error(cat(args...));
}

}  // namespace xgrad
