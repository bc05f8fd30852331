#include <xgrad/layers/layer.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>
#include <unordered_set>

#include <xgrad/autograd/profile.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

namespace {

// Pre-order walk over a layer tree with dotted path prefixes, visiting each layer once.
template <class Visit>
void walk(const Layer& layer, const std::string& prefix, std::unordered_set<const Layer*>& seen, Visit&& visit) {
  if (!seen.insert(&layer).second) return;
  visit(layer, prefix);
  for (const auto& child : layer.named_children()) walk(*child.layer, prefix + child.name + ".", seen, visit);
}

}  // namespace

void Layer::check_new_name(const std::string& name, const char* what) const {
  XGRAD_CHECK(!name.empty(), repr(), ": cannot register a ", what, " with an empty name");
  XGRAD_CHECK(name.find('.') == std::string::npos, repr(), ": cannot register the ", what, " '", name,
              "': a name may not contain '.' (dots separate the levels of a path)");
  bool taken = false;
  for (const auto& p : parameters_) taken = taken || p.name == name;
  for (const auto& b : buffers_) taken = taken || b.first == name;
  for (const auto& c : children_) taken = taken || c.name == name;
  XGRAD_CHECK(!taken, repr(), ": cannot register the ", what, " '", name,
              "': the name is already taken by a parameter, buffer or child of this layer");
}

Variable Layer::register_parameter(const std::string& name, Variable parameter, bool requires_grad) {
  check_new_name(name, "parameter");
  XGRAD_CHECK(parameter.defined(), repr(), ": cannot register the parameter '", name, "': the Variable is undefined");
  parameter.set_requires_grad(requires_grad);
  if (parameter.name().empty()) parameter.set_name(name);
  parameters_.push_back({name, parameter});
  return parameter;
}

Tensor& Layer::register_buffer(const std::string& name, Tensor buffer) {
  check_new_name(name, "buffer");
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(buffer)));
  return *buffers_.back().second;
}

bool Layer::contains(const Layer* layer) const {
  bool found = false;
  std::unordered_set<const Layer*> seen;
  walk(*this, "", seen, [&](const Layer& l, const std::string&) { found = found || &l == layer; });
  return found;
}

void Layer::add_child(const std::string& name, std::shared_ptr<Layer> child) {
  check_new_name(name, "module");
  XGRAD_CHECK(child != nullptr, repr(), ": cannot register the module '", name, "': it is null");
  XGRAD_CHECK(!child->contains(this), repr(), ": cannot register the module '", name, "' (", child->repr(),
              "): it is this layer or contains it, which would make the tree a cycle");
  children_.push_back({name, std::move(child)});
}

std::vector<NamedParameter> Layer::parameters() const {
  std::vector<NamedParameter> all;
  std::unordered_set<const void*> listed;
  std::unordered_set<const Layer*> seen;
  walk(*this, "", seen, [&](const Layer& layer, const std::string& prefix) {
    for (const auto& p : layer.parameters_) {
      if (listed.insert(p.variable.impl().get()).second) all.push_back({prefix + p.name, p.variable});
    }
  });
  return all;
}

std::vector<NamedBuffer> Layer::buffers() const {
  std::vector<NamedBuffer> all;
  std::unordered_set<const Layer*> seen;
  walk(*this, "", seen, [&](const Layer& layer, const std::string& prefix) {
    for (const auto& b : layer.buffers_) all.push_back({prefix + b.first, b.second.get()});
  });
  return all;
}

std::vector<NamedLayer> Layer::named_children() const { return children_; }

std::vector<std::shared_ptr<Layer>> Layer::children() const {
  std::vector<std::shared_ptr<Layer>> out;
  for (const auto& c : children_) out.push_back(c.layer);
  return out;
}

void Layer::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.layer->train(on);
}

void Layer::set_extra_state(const std::vector<std::uint64_t>& state) {
  XGRAD_CHECK(state.empty(), repr(), ": has no extra state, but was given ", state.size(), " words");
}

std::vector<std::pair<std::string, std::vector<std::uint64_t>>> Layer::extra_states() const {
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> all;
  std::unordered_set<const Layer*> seen;
  walk(*this, "", seen, [&](const Layer& layer, const std::string& prefix) {
    auto state = layer.extra_state();
    if (!state.empty()) all.emplace_back(prefix.empty() ? prefix : prefix.substr(0, prefix.size() - 1), std::move(state));
  });
  return all;
}

void Layer::apply(const std::function<void(Layer&)>& fn) {
  std::unordered_set<const Layer*> seen;
  walk(*this, "", seen, [&](const Layer& layer, const std::string&) { fn(const_cast<Layer&>(layer)); });
}

void Layer::zero_grad() {
  for (auto& p : parameters()) p.variable.zero_grad();
}

std::string Layer::repr() const {
  // The dynamic class name without namespaces, e.g. "Block" for my::Block.
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : mangled;
  std::free(demangled);
  const std::size_t colon = name.rfind("::");
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

Variable Layer::operator()(const Variable& x) {
  // repr() is built only when an allocation failed.
  return detail::naming_allocation_failure([this] { return repr(); }, [&] { return forward(x); });
}

void Layer::rethrow_naming_layer(const Error& e, const char* op) const {
  std::string message = e.what();
  const std::string prefix = std::string(op) + ": ";
  if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
  if (dynamic_cast<const AllocationError*>(&e) != nullptr) throw AllocationError(repr() + ": " + message);
  throw Error(repr() + ": " + message);
}

std::string Layer::describe() const {
  if (children_.empty()) return repr();
  std::string out = repr() + "(\n";
  for (const auto& c : children_) {
    std::string inner = c.layer->describe();
    // Indent nested multi-line descriptions.
    for (std::size_t pos = inner.find('\n'); pos != std::string::npos; pos = inner.find('\n', pos + 3)) {
      inner.replace(pos, 1, "\n  ");
    }
    out += "  (" + c.name + "): " + inner + "\n";
  }
  return out + ")";
}

Sequential::Sequential(std::vector<std::shared_ptr<Layer>> layers) {
  for (auto& layer : layers) add(std::move(layer));
}

Sequential& Sequential::add(std::shared_ptr<Layer> layer) { return add(std::to_string(layers_.size()), std::move(layer)); }

Sequential& Sequential::add(const std::string& name, std::shared_ptr<Layer> layer) {
  XGRAD_CHECK(layer != nullptr, "Sequential::add: null layer '", name, "' at index ", layers_.size());
  // The same layer may be added twice (applied twice); its parameters are listed once.
  register_module(name, layer);
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
    for (auto& layer : layers_) h = (*layer)(h);
    return h;
  }
  const auto children = named_children();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    ProfileScope scope(children[i].name + " " + layers_[i]->repr());
    h = (*layers_[i])(h);
  }
  return h;
}

GradcheckResult gradcheck(Layer& layer, const Variable& input, const GradcheckOptions& options) {
  XGRAD_CHECK(input.defined() && input.requires_grad(), "gradcheck(", layer.repr(), "): the input must require grad");
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
