// Internal to xgrad (not installed): the row-stack kernels of LocalResponseNorm, across
// channels with windows longer than kMaxDirect, and the within-channel mode.
//
// A stack of rows of contiguous values (the C channels of a block of positions, or the H rows
// of one image plane) is walked once; RowWindowSum forms window sums over neighbouring rows with
// a block prefix/suffix scheme (O(1) adds per value for any window, no subtraction) and the
// arithmetic is vectorised across each row, the ragged end of a row through partial loads and
// stores.
//
// Versions: forward_rows and backward_rows, each with a row filter applied to every produced
// row before the sums over rows: NoFilter across channels, WidthWindowSum within channel (the
// 2-D window is separable: each row is first summed along W, then rows along H).
#pragma once

#include <xgrad/layers/local_response_norm_kernels_common.hpp>

#include <algorithm>
#include <vector>

namespace xgrad {
namespace {

// out = a + b over `stride` values (a multiple of the lane count; aligned buffers).
template <class T>
void add_rows(const T* a, const T* b, T* out, Index stride) {
  for (Index i = 0; i < stride; i += kLanes<T>) {
    (Batch<T>::load_aligned(a + i) + Batch<T>::load_aligned(b + i)).store_aligned(out + i);
  }
}

// The window of position c is [c - lo, c + hi], clipped to [0, extent - 1]. Clipping lo and
// hi themselves to extent - 1 changes no window sum and bounds the work when size >> extent.
struct Window {
  Index lo;
  Index hi;
  Index len() const { return lo + hi + 1; }
};

// PyTorch's window: [c - floor(n/2), c + floor((n-1)/2)].
inline Window forward_window(Index size, Index extent) {
  return {std::min(size / 2, extent - 1), std::min((size - 1) / 2, extent - 1)};
}

// The positions whose window contains c: [c - floor((n-1)/2), c + floor(n/2)].
inline Window mirrored_window(Index size, Index extent) {
  return {std::min((size - 1) / 2, extent - 1), std::min(size / 2, extent - 1)};
}

// Window sums over a stack of rows v_0 .. v_{R-1} (zero outside [0, R)), streamed: the c-th
// call of next() returns the row W_c = sum_{j = c-lo}^{c+hi} v_j.
//
// No sliding sum (see local_response_norm_kernels.hpp). Instead, with the padded index
// p = j + lo the window of c is [c, c + len - 1]; cut the padded stack into blocks of len rows.
// A window is the suffix (from c) of its first block plus the prefix (up to c + len - 1) of the
// next one, or exactly one block when c starts a block. Suffix sums are formed once per block when its last row arrives, the prefix is a
// running sum restarted at each block: O(1) adds per value whatever the window length, no
// subtraction, and each sum adds at most len terms (non-negative terms stay non-negative).
// Rows are pulled from the producer in order, only len - 1 rows ahead of the output.
template <class T>
class RowWindowSum {
 public:
  // Starts a stack of `rows` rows, each stored in `stride` values (a multiple of the lanes).
  void reset(Index rows, Window window, Index stride) {
    rows_ = rows;
    lo_ = window.lo;
    len_ = window.len();
    stride_ = stride;
    storage_.resize(static_cast<std::size_t>((2 * len_ + 1) * stride_));  // (2 len + 1, stride)
    suffix_.assign(static_cast<std::size_t>(len_), nullptr);
    prefix_ = nullptr;
    next_in_ = 0;
    next_out_ = 0;
  }

  // Returns W_c for c = 0, 1, ... in turn (valid until the next call). produce(j, row) must
  // write v_j into row (`stride` values); it is called for j = 0, 1, ... in order.
  template <class Produce>
  const T* next(Produce&& produce) {
    const Index c = next_out_++;
    while (next_in_ < c + len_) push(produce);
    const Index i = c % len_;
    if (i == 0) return suffix_[0];  // the window is exactly one block
    T* out = row(2 * len_);
    add_rows(suffix_[static_cast<std::size_t>(i)], prefix_, out, stride_);
    return out;
  }

 private:
  // Buffer rows: [0, len) the current block's values, [len, 2 len - 1) suffix sums,
  // 2 len - 1 the running prefix, 2 len the output.
  T* row(Index r) { return storage_.data() + r * stride_; }

  template <class Produce>
  void push(Produce& produce) {
    const Index p = next_in_++;
    const Index i = p % len_;
    T* value = row(i);
    const Index j = p - lo_;
    if (j >= 0 && j < rows_) {
      produce(j, value);
    } else {
      std::fill(value, value + stride_, T(0));
    }
    if (i == 0) {
      prefix_ = value;
    } else {
      add_rows(prefix_, value, row(2 * len_ - 1), stride_);
      prefix_ = row(2 * len_ - 1);
    }
    if (i == len_ - 1) {  // block complete: its suffix sums
      suffix_[static_cast<std::size_t>(i)] = value;
      for (Index r = len_ - 2; r >= 0; --r) {
        add_rows(suffix_[static_cast<std::size_t>(r + 1)], row(r), row(len_ + r), stride_);
        suffix_[static_cast<std::size_t>(r)] = row(len_ + r);
      }
    }
  }

  Index rows_ = 0, lo_ = 0, len_ = 1, stride_ = 0;
  Index next_in_ = 0, next_out_ = 0;
  AlignedVector<T> storage_;   // (2 len + 1, stride)
  std::vector<T*> suffix_;     // (len) suffix-sum rows of the last complete block
  T* prefix_ = nullptr;        // running prefix of the block being filled
};

// Row filters applied to each produced row before the row window sums. Across channels there
// is none; within channel it is the window sum along W, which makes the sums two-dimensional
// (separable: along W here, then along H by RowWindowSum).
template <class T>
struct NoFilter {
  void operator()(T* /*row*/) {}
};

template <class T>
class WidthWindowSum {
 public:
  WidthWindowSum(Index width, Window window) : width_(width), window_(window) {
    // (lo zeros, width values, zeros up to the last vector read)
    padded_.assign(static_cast<std::size_t>(round_up(width, kLanes<T>) + window.len() + kLanes<T>), T(0));
  }

  // row[w] <- sum_{v = w-lo}^{w+hi} row[v] (zero outside [0, width)), directly: the
  // window is short along one image row, and direct sums cannot drift.
  void operator()(T* row) {
    std::copy(row, row + width_, padded_.begin() + window_.lo);
    const Index len = window_.len();
    for (Index w = 0; w < width_; w += kLanes<T>) {
      Batch<T> acc = Batch<T>::load_unaligned(padded_.data() + w);
      for (Index d = 1; d < len; ++d) acc += Batch<T>::load_unaligned(padded_.data() + w + d);
      acc.store_aligned(row + w);
    }
  }

 private:
  Index width_;
  Window window_;
  AlignedVector<T> padded_;
};

// q[i] = x[i]^2 for the `width` values of one row (q aligned, padded to whole vectors with 0).
template <class T>
void store_squares(const T* x, Index width, T* q) {
  for (Index i = 0; i < width; i += kLanes<T>) {
    const Batch<T> v = load_part(x + i, std::min(kLanes<T>, width - i));
    (v * v).store_aligned(q + i);
  }
}

// Forward over one row stack: `rows` rows of `width` values, row r at x + r * row_stride.
template <class T, class Pow, class Filter>
void forward_rows(const T* x, T* y, Index rows, Index row_stride, Index width, Window window,
                  const Coefficients<T>& co, const Pow& pow, Filter& filter, RowWindowSum<T>& sums) {
  const Index stride = round_up(width, kLanes<T>);
  sums.reset(rows, window, stride);
  auto squares = [&](Index j, T* q) {
    store_squares(x + j * row_stride, width, q);
    filter(q);
  };
  const Batch<T> scale(co.scale), k(co.k);
  for (Index c = 0; c < rows; ++c) {
    const T* sum = sums.next(squares);
    const T* xc = x + c * row_stride;
    T* yc = y + c * row_stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> s = xsimd::fma(scale, Batch<T>::load_aligned(sum + i), k);
      store_part(load_part(xc + i, count) * pow(s), yc + i, count);
    }
  }
}

// Backward over one row stack, one pass over the rows with three streams in step:
//   sums_s gives s_j (window sums of x^2, as in the forward);
//   the producer of sums_t turns s_j into u_j = dy_j s_j^(-beta) and
//   t_j = u_j x_j grad_scale / s_j (see NegPow), keeping u_j in a small ring;
//   sums_t gives T_c = the mirrored window sum of t, and dx_c = u_c - x_c T_c.
template <class T, class Pow, class FilterS, class FilterT>
void backward_rows(const T* x, const T* dy, T* dx, Index rows, Index row_stride, Index width,
                   Window window, Window mirrored, const Coefficients<T>& co, const Pow& pow,
                   FilterS& filter_s, FilterT& filter_t, RowWindowSum<T>& sums_s,
                   RowWindowSum<T>& sums_t, AlignedVector<T>& ring, bool accumulate) {
  const Index stride = round_up(width, kLanes<T>);
  sums_s.reset(rows, window, stride);
  sums_t.reset(rows, mirrored, stride);
  // sums_t pulls t_j (and so u_j) at most mirrored.hi rows ahead of the dx row it finishes.
  const Index ring_rows = mirrored.hi + 1;
  ring.resize(static_cast<std::size_t>(ring_rows * stride));  // (ring_rows, stride)
  auto squares = [&](Index j, T* q) {
    store_squares(x + j * row_stride, width, q);
    filter_s(q);
  };
  const Batch<T> scale(co.scale), k(co.k), grad_scale(co.grad_scale);
  auto terms = [&](Index j, T* t) {
    const T* sum = sums_s.next(squares);  // s_j: rows are requested in order
    const T* xj = x + j * row_stride;
    const T* dyj = dy + j * row_stride;
    T* u = ring.data() + (j % ring_rows) * stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> s = xsimd::fma(scale, Batch<T>::load_aligned(sum + i), k);
      Batch<T> p, r;
      pow(s, grad_scale, p, r);
      const Batch<T> uj = load_part(dyj + i, count) * p;
      uj.store_aligned(u + i);
      (uj * (load_part(xj + i, count) * r)).store_aligned(t + i);
    }
    filter_t(t);
  };
  for (Index c = 0; c < rows; ++c) {
    const T* tsum = sums_t.next(terms);
    const T* u = ring.data() + (c % ring_rows) * stride;
    const T* xc = x + c * row_stride;
    T* dxc = dx + c * row_stride;
    for (Index i = 0; i < width; i += kLanes<T>) {
      const Index count = std::min(kLanes<T>, width - i);
      const Batch<T> xv = load_part(xc + i, count);
      Batch<T> g = xsimd::fnma(xv, Batch<T>::load_aligned(tsum + i),
                               Batch<T>::load_aligned(u + i));
      if (accumulate) g += load_part(dxc + i, count);
      store_part(g, dxc + i, count);
    }
  }
}

}  // namespace
}  // namespace xgrad
