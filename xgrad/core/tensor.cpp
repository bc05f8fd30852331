#include <xgrad/core/tensor.hpp>

#include <sstream>

namespace xgrad {

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) out << ',';
  out << ')';
  return out.str();
}

std::size_t numel(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::optional<std::size_t> checked_numel(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return n;
}

namespace detail {

namespace {

template <class Values>
std::string joined(const Values& values, const char* separator) {
  std::string out;
  for (std::size_t v : values) out += cat(out.empty() ? "" : separator, v);
  return out;
}

// The running product or sum of `values` (combine reports overflow as the builtins do), checked
// against `limit`; the message joins the values with `separator`.
template <class Combine>
std::size_t checked_fold(const char* op, const char* what, std::initializer_list<std::size_t> values,
                         std::size_t start, std::size_t limit, const char* separator, const char* noun,
                         Combine combine) {
  std::size_t n = start;
  bool over = false;
  for (std::size_t d : values) over = over || combine(n, d, &n);
  if (over || n > limit) {
    fail(op, ": ", what, " (", joined(values, separator), ") is too large: more than ", limit,
         over ? cat(" (the ", noun, " overflows)") : std::string());
  }
  return n;
}

}  // namespace

std::size_t checked_product(const char* op, const char* what, std::initializer_list<std::size_t> factors,
                            std::size_t limit) {
  // As checked_numel: a running product that overflows is refused even if a later factor is 0
  // (the partial products are strides and offsets of the kernels).
  return checked_fold(op, what, factors, 1, limit, " x ", "product",
                      [](std::size_t a, std::size_t b, std::size_t* r) { return __builtin_mul_overflow(a, b, r); });
}

std::size_t checked_sum(const char* op, const char* what, std::initializer_list<std::size_t> terms,
                        std::size_t limit) {
  return checked_fold(op, what, terms, 0, limit, " + ", "sum",
                      [](std::size_t a, std::size_t b, std::size_t* r) { return __builtin_add_overflow(a, b, r); });
}

std::size_t checked_elements(const char* op, const char* what, const Shape& shape, std::size_t limit) {
  const std::optional<std::size_t> n = checked_numel(shape);
  if (!n.has_value() || *n > limit) {
    fail(op, ": ", what, " ", shape_str(shape), " is too large: more than ", limit, " elements",
         n.has_value() ? "" : " (the product overflows)");
  }
  return *n;
}

void fail_allocation(const char* who, const Shape& shape, std::size_t element_size, const std::exception& cause) {
  const std::size_t n = numel(shape);
  throw AllocationError(cat(who, ": out of memory: cannot allocate a tensor of shape ", shape_str(shape), " (", n,
                            " elements, ", n * element_size, " bytes; ", cause.what(), ")"));
}

}  // namespace detail

}  // namespace xgrad
