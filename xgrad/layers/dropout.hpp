#pragma once
// Dropout: inverted dropout. In training each element is kept with probability 1 - p and
// scaled by 1 / (1 - p); in eval() (or with p == 0) the layer is the identity and records
// nothing.
//
// The mask is a counter-based hash of (seed, call, element index): call counts the training
// forwards since construction or set_seed, so successive steps draw different masks, a run is
// reproducible from its seed, the mask can be generated in parallel and does not depend on the
// thread count, and backward regenerates it instead of saving it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

// Which mask: element i is kept when hash(seed, call, i) >= p * 2^32.
struct DropoutMask {
  double p = 0.5;
  std::uint64_t seed = 0;
  std::uint64_t call = 0;
};

namespace kernels {

// True when element `index` survives under `mask`.
bool dropout_keep(const DropoutMask& mask, std::size_t index);

// y (count) = x * keep / (1 - p)
template <class T>
void dropout_forward(const T* x, T* y, std::size_t count, const DropoutMask& mask);

// dx (count) += dy * keep / (1 - p); with overwrite, dx = that (its previous contents are never
// read).
template <class T>
void dropout_backward(const T* dy, T* dx, std::size_t count, const DropoutMask& mask, bool overwrite = false);

}  // namespace kernels

namespace functional {

// Inverted dropout of x under `mask` when training (and p > 0); otherwise x itself, recording
// nothing. Any shape.
Variable dropout(const Variable& x, const DropoutMask& mask, bool training = true);

}  // namespace functional

class Dropout : public Layer {
 public:
  // p in [0, 1), else xgrad::Error.
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0);

  // Any shape; the output has the input's shape.
  Variable forward(const Variable& x) override;
  // "Dropout(p=0.5)"
  std::string repr() const override;

  // Restarts the mask sequence: the next training forward draws the same mask as the first
  // one after construction with this seed.
  void set_seed(std::uint64_t seed);
  double p() const { return p_; }

  // {seed, masks drawn}: a training-state checkpoint restores them so the mask sequence goes on.
  std::vector<std::uint64_t> extra_state() const override { return {seed_, calls_}; }
  void set_extra_state(const std::vector<std::uint64_t>& state) override;

 private:
  double p_;
  std::uint64_t seed_;
  std::uint64_t calls_ = 0;  // training forwards since construction or set_seed
};

}  // namespace xgrad
