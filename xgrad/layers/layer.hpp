#pragma once
// Layer: the base of every layer and model, after the PyTorch C++ frontend's torch::nn::Module.
// A layer registers what it owns in its constructor:
//   weight_ = register_parameter("weight", Variable(...));   a trainable Variable
//   register_buffer("running_mean", zeros({C}));             state saved with checkpoints
//   conv_ = register_module("conv", std::make_shared<Conv2d>(...));   a child layer
// and the base class derives the rest for every layer: parameters() and buffers() with dotted
// paths ("features.conv1.weight"), train()/eval() reaching every descendant, apply(), and a
// describe() that prints the tree. Sequential composes layers, numbered or named.
//
// requires: forward receives a defined Variable of the shape the layer documents.
// ensures:  parameters() and buffers() are handles to the registered objects, never copies;
//           an object reachable under two paths (weight tying, a layer added twice) is listed
//           once, under the first path in registration order.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/autograd/variable.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

class Layer;

// A registered buffer under its (local or dotted) name; points at the stored tensor.
struct NamedBuffer {
  std::string name;
  Tensor* tensor;
  Tensor& value() const { return *tensor; }
};

// A registered child under its (local or dotted) name.
struct NamedLayer {
  std::string name;
  std::shared_ptr<Layer> layer;
};

class Layer {
 public:
  Layer() = default;
  virtual ~Layer() = default;
  // A layer owns its registrations; copying one would share its parameters by accident.
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual Variable forward(const Variable& x) = 0;
  // forward(x), the one boundary where a failed allocation becomes an AllocationError (an
  // xgrad::Error) naming the layer: no std::bad_alloc or std::length_error leaves a layer's
  // call. Sequential calls its layers through it.
  Variable operator()(const Variable& x);

  // Registration. Each name must be non-empty, free of '.', and unique among this layer's
  // parameters, buffers and children; else xgrad::Error naming the layer and the name.
  // The parameter's requires_grad is set as given (a frozen parameter is still listed and
  // saved); the returned handle shares the stored Variable.
  Variable register_parameter(const std::string& name, Variable parameter, bool requires_grad = true);
  // Returns the stored tensor (its address is stable for the layer's lifetime).
  Tensor& register_buffer(const std::string& name, Tensor buffer);
  // Refuses a null module, the layer itself, and a module that already contains this layer
  // (a cycle). Returns `module`.
  template <class L>
  std::shared_ptr<L> register_module(const std::string& name, std::shared_ptr<L> module) {
    static_assert(std::is_base_of_v<Layer, L>, "register_module: L must derive from xgrad::Layer");
    add_child(name, module);
    return module;
  }

  // Every parameter of this layer and its descendants, pre-order (own first, then children in
  // registration order), named by dotted path; each Variable once.
  std::vector<NamedParameter> parameters() const;
  // Every buffer, named and ordered likewise; each tensor once.
  std::vector<NamedBuffer> buffers() const;
  // The direct children, in registration order.
  std::vector<NamedLayer> named_children() const;
  std::vector<std::shared_ptr<Layer>> children() const;

  // Training mode (the default) or evaluation mode (e.g. Dropout becomes the identity), for
  // this layer and every descendant.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // State that is neither a parameter nor a buffer, as 64-bit words (PyTorch's
  // get_extra_state), e.g. Dropout's seed and count of masks drawn; training-state checkpoints
  // save it so that a resumed run draws what an uninterrupted one would. None by default.
  virtual std::vector<std::uint64_t> extra_state() const { return {}; }
  // Restores what extra_state() returned; xgrad::Error naming the layer for a state it cannot
  // take (by default: any non-empty one).
  virtual void set_extra_state(const std::vector<std::uint64_t>& state);
  // The non-empty extra states of this layer and its descendants, by dotted path of the layer
  // ("" for this one, "features.3"), pre-order, each layer once.
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> extra_states() const;

  // Calls fn on this layer, then on each descendant once, pre-order.
  void apply(const std::function<void(Layer&)>& fn);
  // Zeroes the gradient of every parameter (keeping the buffers).
  void zero_grad();

  // One line describing this layer alone, in PyTorch's style, e.g.
  // "Linear(in_features=4, out_features=8, bias=true)". By default the class name.
  virtual std::string repr() const;
  // The tree: repr(), then one indented "(name): ..." line per child, e.g.
  //   Sequential(
  //     (0): Linear(in_features=4, out_features=8, bias=true)
  //     (1): ReLU()
  //   )
  // A layer without children prints its repr() alone.
  std::string describe() const;

 protected:
  // For a layer whose forward calls a functional form: re-throws an error that form raised
  // (its message beginning "<op>: ") as one naming this layer by its repr(), so that a model
  // with many convolutions says which one. Use in a catch block:
  //   try { return functional::conv2d(...); } catch (const Error& e) { rethrow_naming_layer(e, "Conv2d"); }
  [[noreturn]] void rethrow_naming_layer(const Error& e, const char* op) const;

  bool training_ = true;

 private:
  void check_new_name(const std::string& name, const char* what) const;
  void add_child(const std::string& name, std::shared_ptr<Layer> child);
  bool contains(const Layer* layer) const;

  std::vector<NamedParameter> parameters_;
  // unique_ptr keeps each buffer's address stable as more are registered.
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<NamedLayer> children_;
};

class Sequential : public Layer {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Layer>> layers);

  // Appends a layer named by its index ("0", "1", ...): parameters "<index>.<name>".
  Sequential& add(std::shared_ptr<Layer> layer);
  // Appends a layer under a name of its own: parameters "<name>.<name>".
  Sequential& add(const std::string& name, std::shared_ptr<Layer> layer);
  // Constructs a layer in place, appends it (numbered) and returns it.
  template <class L, class... Args>
  L& emplace(Args&&... args) {
    auto layer = std::make_shared<L>(std::forward<Args>(args)...);
    L& ref = *layer;
    add(std::move(layer));
    return ref;
  }

  std::size_t size() const { return layers_.size(); }
  Layer& operator[](std::size_t i);

  // The layers in order.
  Variable forward(const Variable& x) override;
  std::string repr() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Layer>> layers_;  // the children, in order (also registered)
};

// Checks a layer's backward for its input and every parameter with the tape-level
// gradient checker (see autograd/gradcheck.hpp). The input must require grad.
GradcheckResult gradcheck(Layer& layer, const Variable& input, const GradcheckOptions& options = {});

}  // namespace xgrad
