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

}  // namespace

std::size_t checked_product(const char* op, const char* what, std::initializer_list<std::size_t> factors,
                            std::size_t limit) {
  std::size_t n = 1;
  bool over = false;
  // As checked_numel: a running product that overflows is refused even if a later factor is 0
  // (the partial products are strides and offsets of the kernels).
  for (std::size_t d : factors) over = over || __builtin_mul_overflow(n, d, &n);
  if (over || n > limit) {
    fail(op, ": ", what, " (", joined(factors, " x "), ") is too large: more than ", limit,
         over ? " (the product overflows)" : "");
  }
  return n;
}

std::size_t checked_sum(const char* op, const char* what, std::initializer_list<std::size_t> terms,
                        std::size_t limit) {
  std::size_t n = 0;
  bool over = false;
  for (std::size_t d : terms) over = over || __builtin_add_overflow(n, d, &n);
  if (over || n > limit) {
    fail(op, ": ", what, " (", joined(terms, " + "), ") is too large: more than ", limit,
         over ? " (the sum overflows)" : "");
  }
  return n;
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
