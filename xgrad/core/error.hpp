#pragma once
// xgrad::Error: the one exception type of the public API. Messages name the layer or op,
// the argument and the shapes involved, e.g.
//   "matmul: inner dimensions differ: a is (2, 3), b is (4, 5)".
#include <sstream>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace xgrad {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The Error for memory that could not be allocated (a std::bad_alloc or std::length_error
// underneath, which never leaves the public API). The layer or op boundary that sees one
// names itself at the front of the message.
class AllocationError : public Error {
 public:
  using Error::Error;
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

// The name `who` stands for: itself, or what it returns when it is callable (built only when
// it is needed).
template <class Who>
std::string name_of(const Who& who) {
  if constexpr (std::is_invocable_v<const Who&>) {
    return who();
  } else {
    return cat(who);
  }
}

// Runs f and turns a failed allocation inside it into an AllocationError naming `who` (a name,
// or a callable returning one): std::bad_alloc and std::length_error become
// "<who>: out of memory (...)", and an AllocationError that does not yet begin with "<who>: "
// gets that prefix. For the few shared boundaries (a layer's call, a backward node, an
// op), not for kernels.
template <class Who, class F>
decltype(auto) naming_allocation_failure(const Who& who, F&& f) {
  try {
    return f();
  } catch (const AllocationError& e) {
    const std::string prefix = name_of(who) + ": ";
    const std::string message = e.what();
    if (message.compare(0, prefix.size(), prefix) == 0) throw;
    throw AllocationError(prefix + message);
  } catch (const std::bad_alloc& e) {
    throw AllocationError(cat(name_of(who), ": out of memory (", e.what(), ")"));
  } catch (const std::length_error& e) {
    throw AllocationError(cat(name_of(who), ": out of memory (a size too large to allocate: ", e.what(), ")"));
  }
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
