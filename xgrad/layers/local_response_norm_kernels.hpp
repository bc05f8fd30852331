// Internal to xgrad (not installed): the LocalResponseNorm kernels, shared by
// local_response_norm_forward.cpp and local_response_norm_backward.cpp so that the two halves,
// each a few minutes of compiling, build in parallel. Everything stays in an unnamed namespace,
// as it was when the kernels lived in one file: each of the two translation units has its own
// internal copy of what it uses, which GCC is free to clone and specialise.
//
// One file per kernel family, and this one, which chooses between them:
//   local_response_norm_kernels_common.hpp   work items, s^(-beta) (NegPow), coefficients
//   local_response_norm_kernels_columns.hpp  column walks: across channels, n <= kMaxDirect
//   local_response_norm_kernels_bands.hpp    band walks: the float forward with beta = 3/4
//                                            across channels, n <= kMaxDirect, large tensors
//   local_response_norm_kernels_rows.hpp     row stacks: longer windows, and within channel
//   local_response_norm_kernels_hooks.hpp    test hooks (which walks the forward takes)
//
// Dimension key: N = batch, C = channels, S = inner size (product of the trailing dims),
// H, W = height, width (within channel), n = window size.
//
// Which version runs: across channels with n <= kMaxDirect = 8, the columns (one instantiation
// per n), but for the float forward with beta = 3/4 on tensors of 2^22 values or more, where
// memory bounds it, the bands (takes_band_walks; they give the columns' bits); across channels with a longer window, row stacks over blocks of positions; within
// channel, row stacks over each (sample, channel) plane. Each for the BetaKind of beta (3/4,
// 1/2 and 1 have their own forms of s^(-beta), see NegPow).
//
// Neither family keeps a running sum with subtraction: in float a large square passing
// through the window would leave its rounding error in every later sum (and could drive a
// sum of squares negative), so a 1e-3 channel next to a 1e3 one would come out wrong.
//
// Threading: work items (a sample and a block of kBlock positions; or a sample and channel
// plane) are cut by the shape alone, never by the thread count, and an OpenMP static loop
// hands whole items to threads: each output element is written by one thread with the same
// arithmetic at any thread count, so results are bit-identical.
#pragma once

// First: the pragmas at its top cover xsimd's headers.
#include <xgrad/layers/local_response_norm_kernels_common.hpp>
#include <xgrad/layers/local_response_norm_kernels_bands.hpp>
#include <xgrad/layers/local_response_norm_kernels_columns.hpp>
#include <xgrad/layers/local_response_norm_kernels_hooks.hpp>
#include <xgrad/layers/local_response_norm_kernels_rows.hpp>

#include <algorithm>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <xgrad/core/threading.hpp>
#include <xgrad/layers/local_response_norm.hpp>

namespace xgrad {
namespace {

// The view of a valid input as work items.
struct Geometry {
  Index n = 0, c = 0, inner = 0;  // (N, C, S)
  Index h = 0, w = 0;             // within channel: S = H * W
};

inline Geometry geometry_of(const std::vector<std::size_t>& shape) {
  Geometry g;
  g.n = static_cast<Index>(shape[0]);
  g.c = static_cast<Index>(shape[1]);
  g.inner = 1;
  for (std::size_t d = 2; d < shape.size(); ++d) g.inner *= static_cast<Index>(shape[d]);
  if (shape.size() == 4) {
    g.h = static_cast<Index>(shape[2]);
    g.w = static_cast<Index>(shape[3]);
  }
  return g;
}

template <class T>
Coefficients<T> coefficients_of(const LrnOptions& o) {
  const double divisor = o.mode() == LrnMode::WithinChannel
                             ? static_cast<double>(o.size()) * static_cast<double>(o.size())
                             : static_cast<double>(o.size());
  return {static_cast<T>(o.alpha() / divisor), static_cast<T>(o.k()),
          static_cast<T>(2.0 * o.alpha() * o.beta() / divisor)};
}

// Calls f(std::integral_constant<int, N>()) with N = size, for 1 <= size <= kMaxDirect: the
// one map from the runtime window size to the compile-time N of the column kernels (one
// instantiation of f per size).
template <class F>
void with_window_size(Index size, F&& f) {
  static_assert(kMaxDirect == 8, "one case per window size up to kMaxDirect");
  switch (size) {
    case 1: f(std::integral_constant<int, 1>()); break;
    case 2: f(std::integral_constant<int, 2>()); break;
    case 3: f(std::integral_constant<int, 3>()); break;
    case 4: f(std::integral_constant<int, 4>()); break;
    case 5: f(std::integral_constant<int, 5>()); break;
    case 6: f(std::integral_constant<int, 6>()); break;
    case 7: f(std::integral_constant<int, 7>()); break;
    default: f(std::integral_constant<int, 8>()); break;
  }
}

template <class T, BetaKind K>
void forward_impl(const T* x, T* y, const Geometry& g, const LrnOptions& o) {
  const Coefficients<T> co = coefficients_of<T>(o);
  const NegPow<T, K> pow{Batch<T>(static_cast<T>(-o.beta())),
                         o.k() >= static_cast<double>(std::numeric_limits<T>::min())};
  if (o.mode() == LrnMode::AcrossChannels && o.size() <= kMaxDirect) {
    // x and y by value: a pointer captured by reference would have its address taken, and the
    // row-stack regions below would then reach it through that address.
    with_window_size(o.size(), [x, y, &g, &co, &pow](auto n) {
      if constexpr (std::is_same<T, float>::value && K == BetaKind::ThreeQuarters) {
        const detail::LrnWalks walks = detail::lrn_walks();
        if (walks == detail::LrnWalks::Bands ||
            (walks == detail::LrnWalks::Automatic && takes_band_walks(g.n, g.c, g.inner))) {
          forward_bands<decltype(n)::value>(x, y, g.n, g.c, g.inner, co, pow);
          return;
        }
      }
      forward_columns<T, K, decltype(n)::value>(x, y, g.n, g.c, g.inner, co, pow);
    });
  } else if (o.mode() == LrnMode::AcrossChannels) {
    const Index blocks = blocks_per_sample(g.inner);
    const Index items = g.n * blocks;
    const Window window = forward_window(o.size(), g.c);
    // The row stacks allocate (per thread, per item): errors are carried out of the region.
    ParallelErrors errors;
#pragma omp parallel
    {
      RowWindowSum<T> sums;
      NoFilter<T> filter;
      // Items are (sample, block of positions); each thread writes only its items' outputs.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        if (errors.failed()) continue;
        errors.run([&] {
          const BlockItem b = block_item(item, blocks, g.c, g.inner);
          const Index offset = b.sample_offset + b.begin;
          forward_rows(x + offset, y + offset, g.c, g.inner, b.end - b.begin, window, co, pow,
                       filter, sums);
        });
      }
    }
    errors.rethrow();
  } else {
    const Index items = g.n * g.c;
    const Window window_h = forward_window(o.size(), g.h);
    const Window window_w = forward_window(o.size(), g.w);
    ParallelErrors errors;
#pragma omp parallel
    {
      RowWindowSum<T> sums;
      std::optional<WidthWindowSum<T>> filter;
      errors.run([&] { filter.emplace(g.w, window_w); });
      // Items are (sample, channel) planes; each thread writes only its planes.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        if (errors.failed()) continue;
        errors.run([&] {
          const Index offset = item * g.inner;
          forward_rows(x + offset, y + offset, g.h, g.w, g.w, window_h, co, pow, *filter, sums);
        });
      }
    }
    errors.rethrow();
  }
}

template <class T, BetaKind K>
void backward_impl(const T* x, const T* dy, T* dx, const Geometry& g, const LrnOptions& o,
                   bool accumulate) {
  const Coefficients<T> co = coefficients_of<T>(o);
  const NegPow<T, K> pow{Batch<T>(static_cast<T>(-o.beta())),
                         o.k() >= static_cast<double>(std::numeric_limits<T>::min())};
  if (o.mode() == LrnMode::AcrossChannels && o.size() <= kMaxDirect) {
    with_window_size(o.size(), [x, dy, dx, accumulate, &g, &co, &pow](auto n) {  // as in forward_impl
      backward_columns<T, K, decltype(n)::value>(x, dy, dx, g.n, g.c, g.inner, co, pow, accumulate);
    });
  } else if (o.mode() == LrnMode::AcrossChannels) {
    const Index blocks = blocks_per_sample(g.inner);
    const Index items = g.n * blocks;
    const Window window = forward_window(o.size(), g.c);
    const Window mirrored = mirrored_window(o.size(), g.c);
    ParallelErrors errors;
#pragma omp parallel
    {
      RowWindowSum<T> sums_s, sums_t;
      AlignedVector<T> ring;
      NoFilter<T> filter_s, filter_t;
      // Items are (sample, block of positions); each thread writes only its items' outputs.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        if (errors.failed()) continue;
        errors.run([&] {
          const BlockItem b = block_item(item, blocks, g.c, g.inner);
          const Index offset = b.sample_offset + b.begin;
          backward_rows(x + offset, dy + offset, dx + offset, g.c, g.inner, b.end - b.begin,
                        window, mirrored, co, pow, filter_s, filter_t, sums_s, sums_t, ring,
                        accumulate);
        });
      }
    }
    errors.rethrow();
  } else {
    const Index items = g.n * g.c;
    const Window window_h = forward_window(o.size(), g.h);
    const Window mirrored_h = mirrored_window(o.size(), g.h);
    ParallelErrors errors;
#pragma omp parallel
    {
      RowWindowSum<T> sums_s, sums_t;
      AlignedVector<T> ring;
      std::optional<WidthWindowSum<T>> filter_s, filter_t;
      errors.run([&] {
        filter_s.emplace(g.w, forward_window(o.size(), g.w));
        filter_t.emplace(g.w, mirrored_window(o.size(), g.w));
      });
      // Items are (sample, channel) planes; each thread writes only its planes.
#pragma omp for schedule(static)
      for (Index item = 0; item < items; ++item) {
        if (errors.failed()) continue;
        errors.run([&] {
          const Index offset = item * g.inner;
          backward_rows(x + offset, dy + offset, dx + offset, g.h, g.w, g.w, window_h, mirrored_h,
                        co, pow, *filter_s, *filter_t, sums_s, sums_t, ring, accumulate);
        });
      }
    }
    errors.rethrow();
  }
}

// Calls f(std::integral_constant<BetaKind, K>()) with the K of beta: the one map from beta to
// the kernels' compile-time BetaKind (one instantiation of f per kind).
template <class F>
void with_beta_kind(double beta, F&& f) {
  if (beta == 0.75) {
    f(std::integral_constant<BetaKind, BetaKind::ThreeQuarters>());
  } else if (beta == 0.5) {
    f(std::integral_constant<BetaKind, BetaKind::Half>());
  } else if (beta == 1.0) {
    f(std::integral_constant<BetaKind, BetaKind::One>());
  } else {
    f(std::integral_constant<BetaKind, BetaKind::Generic>());
  }
}

// beta = 0 (or, in float, a beta that rounds to 0): y = x and dx = dy, done without the
// kernels, whose pow would give inf^0 = NaN where x^2 overflows.
template <class T>
bool beta_is_zero(const LrnOptions& o) {
  return static_cast<T>(o.beta()) == T(0);
}

// Settings under which float's s^(-beta) can leave float range while y and dx do not: k = 0
// (alpha/n sum x^2 underflows for inputs below ~1e-17) or k^(-beta) near or above FLT_MAX (the
// smallest windows' s^(-beta) overflows). Float runs them through the double kernels, where a
// float's square and the sums are normal numbers; AlexNet's settings (k = 2) never do.
inline bool float_needs_double(const LrnOptions& o) {
  if (o.k() == 0) return true;
  return o.beta() > 0 && std::pow(o.k(), -o.beta()) > 0x1p100;
}

inline std::size_t element_count(const std::vector<std::size_t>& shape) {
  std::size_t count = 1;
  for (std::size_t d : shape) count *= d;
  return count;
}

inline bool is_empty(const std::vector<std::size_t>& shape) {
  return std::any_of(shape.begin(), shape.end(), [](std::size_t d) { return d == 0; });
}

}  // namespace
}  // namespace xgrad
