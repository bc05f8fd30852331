#include <xgrad/layers/layer.hpp>

#include <xgrad/autograd/profile.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

Sequential::Sequential(std::vector<std::shared_ptr<Layer>> layers) {
  for (auto& layer : layers) add(std::move(layer));
}

Sequential& Sequential::add(std::shared_ptr<Layer> layer) {
  XGRAD_CHECK(layer != nullptr, "Sequential::add: null layer at index ", layers_.size());
  layer->train(training_);
  layers_.push_back(std::move(layer));
  return *this;
}

Layer& Sequential::operator[](std::size_t i) {
  XGRAD_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range for ", layers_.size(), " layers");
  return *layers_[i];
}

Variable Sequential::forward(const Variable& x) {
  Variable h = x;
  if (!profiling()) {
    for (auto& layer : layers_) h = layer->forward(h);
    return h;
  }
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    ProfileScope scope(std::to_string(i) + " " + layers_[i]->describe());
    h = layers_[i]->forward(h);
  }
  return h;
}

std::vector<NamedParameter> Sequential::parameters() {
  std::vector<NamedParameter> all;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    for (auto& p : layers_[i]->parameters()) all.push_back({std::to_string(i) + "." + p.name, p.variable});
  }
  return all;
}

void Sequential::train(bool on) {
  training_ = on;
  for (auto& layer : layers_) layer->train(on);
}

std::string Sequential::describe() const {
  std::string out = "Sequential(\n";
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    std::string inner = layers_[i]->describe();
    // Indent nested multi-line descriptions.
    for (std::size_t pos = inner.find('\n'); pos != std::string::npos; pos = inner.find('\n', pos + 3)) {
      inner.replace(pos, 1, "\n  ");
    }
    out += "  (" + std::to_string(i) + "): " + inner + "\n";
  }
  return out + ")";
}

GradcheckResult gradcheck(Layer& layer, const Variable& input, const GradcheckOptions& options) {
  XGRAD_CHECK(input.defined() && input.requires_grad(), "gradcheck(", layer.describe(), "): the input must require grad");
  std::vector<Variable> wrt{input};
  for (auto& p : layer.parameters()) {
    Variable v = p.variable;
    if (v.name().empty()) v.set_name(p.name);
    wrt.push_back(v);
  }
  Variable x = input;
  return gradcheck([&layer, x] { return layer.forward(x); }, wrt, options);
}

}  // namespace xgrad
