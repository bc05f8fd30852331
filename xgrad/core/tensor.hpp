#pragma once
// Tensor: xgrad's one tensor type, a row-major float xtensor array of any rank.
// Kernels take raw pointers and explicit sizes; xtensor expressions are for glue code.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace xgrad {

using Tensor = xt::xarray<float>;
using Shape = std::vector<std::size_t>;

// "(32, 96, 55, 55)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

template <class S>
std::string shape_str(const S& shape) {
  return shape_str(Shape(shape.begin(), shape.end()));
}

// Product of the dimensions (1 for a scalar).
std::size_t numel(const Shape& shape);

// The same product, or nothing when it overflows std::size_t: the one overflow-checked size
// helper, for shapes read from files or computed from user input.
std::optional<std::size_t> checked_numel(const Shape& shape);

template <class T = float>
xt::xarray<T> zeros(const Shape& shape) {
  return xt::xarray<T>(shape, T(0));
}

template <class T = float>
xt::xarray<T> full(const Shape& shape, T value) {
  return xt::xarray<T>(shape, value);
}

// A tensor of the given shape with uninitialised contents (to be overwritten by a kernel).
template <class T = float>
xt::xarray<T> empty(const Shape& shape) {
  return xt::xarray<T>::from_shape(shape);
}

}  // namespace xgrad
