#pragma once
// Layer: the interface every layer implements, and Sequential, which composes layers.
//
// requires: forward receives a defined Variable of the shape the layer documents.
// ensures:  parameters() returns the layer's own Variables (handles, never copies), named by
//           dotted paths that checkpoints share ("0.weight", "features.3.bias").
#include <memory>
#include <string>
#include <vector>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/variable.hpp>

namespace xgrad {

class Layer {
 public:
  virtual ~Layer() = default;

  virtual Variable forward(const Variable& x) = 0;
  Variable operator()(const Variable& x) { return forward(x); }

  // Trainable parameters with their (local or dotted) names; none by default.
  virtual std::vector<NamedParameter> parameters() { return {}; }

  // Training mode (the default) or evaluation mode (e.g. Dropout becomes the identity).
  virtual void train(bool on = true) { training_ = on; }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // One line in PyTorch's style, e.g. "Linear(in_features=4, out_features=8, bias=true)".
  virtual std::string describe() const = 0;

 protected:
  bool training_ = true;
};

class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Layer>> layers);

  // Appends a layer; its parameters are named "<index>.<name>".
  Sequential& add(std::shared_ptr<Layer> layer);
  // Constructs a layer in place and returns it.
  template <class L, class... Args>
  L& emplace(Args&&... args) {
    auto layer = std::make_shared<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    add(std::move(layer));
    return ref;
  }

  std::size_t size() const { return layers_.size(); }
  Layer& operator[](std::size_t i);

  Variable forward(const Variable& x) override;
  std::vector<NamedParameter> parameters() override;
  void train(bool on = true) override;
  // Multi-line: "Sequential(\n  (0): Linear(...)\n  (1): ReLU()\n)".
  std::string describe() const override;

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

// Checks a layer's backward for its input and every parameter with the tape-level
// gradient checker (see autograd/gradcheck.hpp). The input must require grad.
GradcheckResult gradcheck(Layer& layer, const Variable& input, const GradcheckOptions& options = {});

}  // namespace xgrad
