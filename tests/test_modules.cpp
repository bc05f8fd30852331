// Modules: what registering parameters, buffers and children gives every layer (dotted names in
// pre-order, a tied weight listed and updated once, train()/eval() and apply() over the tree,
// describe(), checkpoints of parameters and buffers) and the registration errors; layers built
// from options structs and the functional forms through the gradient checker; SGD's options.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <xgrad/layers/functional.hpp>
#include <xgrad/xgrad.hpp>
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::test::mentions;
using xgrad::test::random_tensor;
using xgrad::test::TempDir;
using Names = std::vector<std::string>;

namespace {

// conv -> ReLU -> dropout, with a buffer of its own. (N, 2, H, W) -> (N, 2, H, W).
struct Block : Layer {
  explicit Block(Rng& rng) {
    conv = register_module("conv", std::make_shared<Conv2d>(Conv2dOptions(2, 2, 3).padding(1), rng));
    drop = register_module("drop", std::make_shared<Dropout>(0.5));
    running_mean = &register_buffer("running_mean", zeros({2}));
  }
  Variable forward(const Variable& x) override { return drop->forward(functional::relu(conv->forward(x))); }
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<Dropout> drop;
  Tensor* running_mean;  // (2)
};

// Two blocks and a head holding a named and a numbered child, then a parameter and a buffer of
// its own, registered last but listed first (a layer's own entries precede its children's).
// (N, 2, 4, 4) -> (N, 3).
struct Net : Layer {
  explicit Net(Rng& rng) {
    block1 = register_module("block1", std::make_shared<Block>(rng));
    block2 = register_module("block2", std::make_shared<Block>(rng));
    head = register_module("head", std::make_shared<Sequential>());
    head->add("fc", std::make_shared<Linear>(32, 8, true, rng));
    head->add(std::make_shared<Linear>(8, 3, true, rng));
    gain = register_parameter("gain", Variable(full<float>({1}, 1.5f)));
    step = &register_buffer("step", zeros({1}));
  }
  Variable forward(const Variable& x) override {
    return mul(head->forward(flatten(block2->forward(block1->forward(x)))), gain);
  }
  std::shared_ptr<Block> block1, block2;
  std::shared_ptr<Sequential> head;
  Variable gain;  // (1)
  Tensor* step;   // (1)
};

// A module with nothing of its own (the registration tests fill it); the identity.
struct Box : Layer {
  Variable forward(const Variable& x) override { return x; }
};
struct Crate : Layer {
  Variable forward(const Variable& x) override { return x; }
};

// y = x W for a W it is given: registered here and in the module that made it (weight tying).
struct Decoder : Layer {
  explicit Decoder(const Variable& w) { weight = register_parameter("weight", w); }
  Variable forward(const Variable& x) override { return matmul(x, weight); }
  Variable weight;  // (3, 4), shared
};

// A tied autoencoder: x (N, 4) -> x W^T (N, 3) -> x W^T W (N, 4), one W (3, 4).
struct Tied : Layer {
  explicit Tied(Rng& rng) {
    encoder = register_module("encoder", std::make_shared<Linear>(4, 3, false, rng));
    decoder = register_module("decoder", std::make_shared<Decoder>(encoder->weight()));
  }
  Variable forward(const Variable& x) override { return decoder->forward(encoder->forward(x)); }
  std::shared_ptr<Linear> encoder;
  std::shared_ptr<Decoder> decoder;
};

// Linear -> ReLU, then a dropout: a two-level tree for describe().
struct Classifier : Layer {
  Classifier() {
    body = register_module("body", std::make_shared<Sequential>());
    body->emplace<Linear>(4, 3);
    body->emplace<ReLU>();
    drop = register_module("drop", std::make_shared<Dropout>(0.5));
  }
  Variable forward(const Variable& x) override { return drop->forward(body->forward(x)); }
  std::shared_ptr<Sequential> body;
  std::shared_ptr<Dropout> drop;
};

template <class Named>
Names names(const std::vector<Named>& list) {
  Names out;
  for (const auto& entry : list) out.push_back(entry.name);
  return out;
}

// Values of magnitude in [0.2, 1.2) with random signs: away from ReLU's kink at 0.
Tensor signed_values(const Shape& shape, std::uint64_t seed) {
  Tensor t = random_tensor(shape, seed, 0.2, 1.2);
  Rng signs(seed + 1);
  for (auto& v : t) v = signs.uniform() < 0.5 ? -v : v;
  return t;
}

// Distinct values 0.05 apart in a seeded order: a finite-difference step of 1e-2 never changes
// which element of a pooling window is the largest.
Tensor distinct_values(const Shape& shape, std::uint64_t seed) {
  Tensor t = empty(shape);
  std::vector<std::size_t> order(t.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng(seed).shuffle(order);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = 0.05f * (static_cast<float>(order[i]) - 0.5f * t.size());
  return t;
}

// The checker must pass, and must have compared all of each tensor up to max_elements (a tensor
// it left out would pass unseen).
void require_all_checked(const GradcheckResult& r, const std::vector<Variable>& wrt, const GradcheckOptions& options) {
  std::size_t expected = 0;
  for (const Variable& v : wrt) expected += std::min(v.size(), options.max_elements);
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(r.checked > 0u);
  BOOST_TEST(r.checked == expected);
}

void check_gradients(const std::function<Variable()>& f, const std::vector<Variable>& wrt,
                     const GradcheckOptions& options = {}) {
  require_all_checked(gradcheck(f, wrt, options), wrt, options);
}

// Through the layer overload: the input and every parameter of the layer.
void check_layer_gradients(Layer& layer, const Variable& input, const GradcheckOptions& options = {}) {
  std::vector<Variable> wrt{input};
  for (const auto& p : layer.parameters()) wrt.push_back(p.variable);
  require_all_checked(gradcheck(layer, input, options), wrt, options);
}

// After a backward through model, one SGD step (lr 0.1) over `for_sgd` must move each of the
// model's parameters by -lr * grad exactly once, however often it is registered.
void check_one_step(Layer& model, std::vector<NamedParameter> for_sgd, const Shape& input_shape) {
  optim::SGD sgd(std::move(for_sgd), optim::SGDOptions(0.1));
  const Variable y = model(Variable(random_tensor(input_shape, 5)));
  sum(mul(y, y)).backward();
  const auto params = model.parameters();
  std::vector<Tensor> before, grads;
  for (const auto& p : params) {
    before.push_back(p.variable.value());
    grads.push_back(p.variable.grad());
  }
  sgd.step();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const float* after = params[i].variable.value().data();
    float largest_step = 0.0f;
    for (std::size_t j = 0; j < before[i].size(); ++j) {
      const float step = 0.1f * grads[i].data()[j];
      BOOST_TEST(std::abs(after[j] - (before[i].data()[j] - step)) <= 1e-6f, params[i].name << "[" << j << "]");
      largest_step = std::max(largest_step, std::abs(step));
    }
    // Else one update and two would look the same.
    BOOST_TEST(largest_step > 1e-3f, params[i].name);
  }
}

// Every parameter and buffer of a model, by name, as copies.
std::vector<std::pair<std::string, Tensor>> snapshot(const Layer& model) {
  std::vector<std::pair<std::string, Tensor>> all;
  for (const auto& p : model.parameters()) all.emplace_back(p.name, p.variable.value());
  for (const auto& b : model.buffers()) all.emplace_back(b.name, b.value());
  return all;
}

bool same_bits(const std::vector<std::pair<std::string, Tensor>>& a, const std::vector<std::pair<std::string, Tensor>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Tensor &x = a[i].second, &y = b[i].second;
    if (a[i].first != b[i].first || x.shape() != y.shape()) return false;
    if (std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

Names entries(const fs::path& dir) {
  Names out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// functional::relu's value, recorded with a hand-written backward scaled by `factor` (1 is right).
Variable relu_with_scaled_backward(const Variable& x, float factor) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = functional::relu(x).value();
  }
  return record_op("relu_with_scaled_backward", std::move(y), {x}, [x, factor](const Tensor& dy) {
    if (!x.requires_grad()) return;
    float* dx = x.grad_buffer().data();
    const float* xv = x.value().data();
    for (std::size_t i = 0; i < dy.size(); ++i) dx[i] += xv[i] > 0.0f ? factor * dy.data()[i] : 0.0f;
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(naming)

BOOST_AUTO_TEST_CASE(nested_modules_give_dotted_names_in_pre_order) {
  Rng rng(1);
  Net net(rng);
  const Names params{"gain",
                     "block1.conv.weight", "block1.conv.bias",
                     "block2.conv.weight", "block2.conv.bias",
                     "head.fc.weight", "head.fc.bias",
                     "head.1.weight", "head.1.bias"};
  BOOST_TEST(names(net.parameters()) == params, tt::per_element());
  const Names buffers{"step", "block1.running_mean", "block2.running_mean"};
  BOOST_TEST(names(net.buffers()) == buffers, tt::per_element());
  // Seen from a child, the same objects under local paths.
  BOOST_TEST(names(net.block2->parameters()) == (Names{"conv.weight", "conv.bias"}), tt::per_element());
  BOOST_TEST(names(net.head->parameters()) == (Names{"fc.weight", "fc.bias", "1.weight", "1.bias"}), tt::per_element());
  // Handles to the registered objects, not copies.
  const auto p = net.parameters();
  BOOST_TEST(p[0].variable.same(net.gain));
  BOOST_TEST(p[3].variable.same(net.block2->conv->weight()));
  BOOST_TEST(p[8].variable.same(static_cast<Linear&>((*net.head)[1]).bias()));
  const auto b = net.buffers();
  BOOST_TEST((b[0].tensor == net.step));
  BOOST_TEST((b[2].tensor == net.block2->running_mean));
  b[1].value()(1) = 4.0f;
  BOOST_TEST((*net.block1->running_mean)(1) == 4.0f);
}

BOOST_AUTO_TEST_CASE(registration_returns_the_stored_objects) {
  Box box;
  Variable v(zeros({2}));
  BOOST_TEST(!v.requires_grad());
  const Variable stored = box.register_parameter("w", v);
  BOOST_TEST(stored.same(v));
  BOOST_TEST(box.parameters()[0].variable.same(v));
  BOOST_TEST(v.requires_grad());  // made to require grad
  Variable frozen(zeros({2}), true);
  box.register_parameter("frozen", frozen, /*requires_grad=*/false);
  BOOST_TEST(!frozen.requires_grad());
  BOOST_TEST(box.parameters().size() == 2u);
  Tensor& t = box.register_buffer("count", zeros({3}));
  for (int i = 0; i < 20; ++i) box.register_buffer("extra" + std::to_string(i), zeros({1}));
  t(1) = 5.0f;
  // The first buffer has not moved while more were registered.
  BOOST_TEST((box.buffers()[0].tensor == &t));
  BOOST_TEST(box.buffers()[0].value()(1) == 5.0f);
  auto relu = std::make_shared<ReLU>();
  BOOST_TEST((box.register_module("act", relu) == relu));
  BOOST_TEST(names(box.named_children()) == (Names{"act"}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(children_are_the_direct_ones) {
  Rng rng(2);
  Net net(rng);
  const auto named = net.named_children();
  BOOST_TEST(names(named) == (Names{"block1", "block2", "head"}), tt::per_element());
  const auto children = net.children();
  BOOST_TEST_REQUIRE(children.size() == 3u);
  BOOST_TEST((children[0] == net.block1));
  BOOST_TEST((children[1] == net.block2));
  BOOST_TEST((named[2].layer == net.head));
  BOOST_TEST(names(net.block1->named_children()) == (Names{"conv", "drop"}), tt::per_element());
  BOOST_TEST(names(net.head->named_children()) == (Names{"fc", "1"}), tt::per_element());
  BOOST_TEST(net.block1->conv->children().empty());
}

BOOST_AUTO_TEST_CASE(apply_visits_every_module_once_in_pre_order) {
  Rng rng(3);
  Net net(rng);
  std::vector<const Layer*> visited;
  net.apply([&](Layer& layer) { visited.push_back(&layer); });
  const std::vector<const Layer*> expected{
      &net,
      net.block1.get(), net.block1->conv.get(), net.block1->drop.get(),
      net.block2.get(), net.block2->conv.get(), net.block2->drop.get(),
      net.head.get(), &(*net.head)[0], &(*net.head)[1]};
  BOOST_TEST(visited.size() == 10u);
  BOOST_TEST((visited == expected));

  // A module registered three times (twice in a Sequential, once beside it) is visited once.
  auto fc = std::make_shared<Linear>(2, 2, true, rng);
  auto relu = std::make_shared<ReLU>();
  auto seq = std::make_shared<Sequential>();
  seq->add(fc).add(relu).add(fc);
  Box outer;
  outer.register_module("fc", fc);
  outer.register_module("seq", seq);
  visited.clear();
  outer.apply([&](Layer& layer) { visited.push_back(&layer); });
  BOOST_TEST((visited == std::vector<const Layer*>{&outer, fc.get(), seq.get(), relu.get()}));
  BOOST_TEST(seq->size() == 3u);  // the forward still applies it twice
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(tying)

BOOST_AUTO_TEST_CASE(a_weight_registered_in_two_modules_is_listed_and_updated_once) {
  Rng rng(4);
  Tied model(rng);
  const auto params = model.parameters();
  BOOST_TEST_REQUIRE(params.size() == 1u);
  BOOST_TEST(params[0].name == "encoder.weight");  // the first path
  BOOST_TEST(params[0].variable.same(model.decoder->weight));
  check_one_step(model, model.parameters(), {2, 4});
  // SGD keeps a Variable passed to it twice once as well.
  Tied other(rng);
  const Variable w = other.encoder->weight();
  check_one_step(other, {{"a", w}, {"b", w}}, {2, 4});
}

BOOST_AUTO_TEST_CASE(a_layer_added_twice_to_a_sequential_is_listed_and_updated_once) {
  Rng rng(5);
  auto fc = std::make_shared<Linear>(3, 3, true, rng);
  Sequential model;
  model.add(fc).add(fc);
  BOOST_TEST(names(model.parameters()) == (Names{"0.weight", "0.bias"}), tt::per_element());
  check_one_step(model, model.parameters(), {2, 3});
}

BOOST_AUTO_TEST_CASE(a_tied_weight_receives_the_gradient_of_both_uses) {
  Rng rng(6);
  Tied model(rng);
  check_layer_gradients(model, Variable(random_tensor({2, 4}, 7), true, "input"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(modes)

BOOST_AUTO_TEST_CASE(eval_on_the_parent_reaches_a_dropout_two_levels_down) {
  Rng rng(8);
  Net net(rng);
  Dropout& drop = *net.block2->drop;
  const Variable x(random_tensor({4, 1000}, 9, 0.5, 1.5));  // never zero
  net.eval();
  BOOST_TEST(!net.is_training());
  BOOST_TEST(!net.block2->is_training());
  BOOST_TEST(!drop.is_training());
  BOOST_TEST(!(*net.head)[1].is_training());
  BOOST_TEST((drop(x).value() == x.value()));
  net.train();
  BOOST_TEST(drop.is_training());
  BOOST_TEST(net.block1->drop->is_training());
  BOOST_TEST(!(drop(x).value() == x.value()));
}

BOOST_AUTO_TEST_CASE(the_whole_model_is_deterministic_in_eval_only) {
  Rng rng(10);
  Net net(rng);
  const Variable x(random_tensor({2, 2, 4, 4}, 11));
  NoGradGuard no_grad;
  net.eval();
  const Tensor y = net(x).value();
  BOOST_TEST((net(x).value() == y));
  net.train();  // the dropouts draw a new mask on each call
  const Tensor a = net(x).value(), b = net(x).value();
  BOOST_TEST(!(a == b));
  BOOST_TEST(!(a == y));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(buffers_in_checkpoints)

BOOST_AUTO_TEST_CASE(buffers_round_trip_bit_exactly_one_file_each) {
  TempDir tmp;
  Rng rng(12);
  Net net(rng);
  // Values a decimal text format would mangle.
  (*net.block1->running_mean)(0) = -0.0f;
  (*net.block1->running_mean)(1) = std::numeric_limits<float>::denorm_min();
  *net.block2->running_mean = random_tensor({2}, 13);
  (*net.step)(0) = 12345.0f;
  const auto saved = snapshot(net);
  save_checkpoint(net, tmp("ckpt"));

  // One .npy per parameter and per buffer, named by its dotted path.
  Names expected;
  for (const auto& p : net.parameters()) expected.push_back(p.name + ".npy");
  for (const auto& b : net.buffers()) expected.push_back(b.name + ".npy");
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(expected.size() == 12u);  // 9 parameters, 3 buffers
  BOOST_TEST(entries(tmp("ckpt")) == expected, tt::per_element());

  for (auto p : net.parameters()) p.variable.mutable_value().fill(7.0f);
  for (const auto& b : net.buffers()) b.value().fill(7.0f);
  BOOST_TEST(!same_bits(snapshot(net), saved));
  load_checkpoint(net, tmp("ckpt"));
  BOOST_TEST(same_bits(snapshot(net), saved));
  // Loaded into the tensors the modules registered.
  BOOST_TEST((*net.step)(0) == 12345.0f);
  BOOST_TEST(std::signbit((*net.block1->running_mean)(0)));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(registration_errors)

BOOST_AUTO_TEST_CASE(bad_and_taken_names_are_refused_naming_the_layer_and_the_name) {
  Box box;
  BOOST_CHECK_EXCEPTION(box.register_parameter("", Variable(zeros({1}))), Error, mentions({"Box", "empty"}));
  BOOST_CHECK_EXCEPTION(box.register_buffer("running.mean", zeros({1})), Error, mentions({"Box", "running.mean"}));
  BOOST_CHECK_EXCEPTION(box.register_module("fc.1", std::make_shared<ReLU>()), Error, mentions({"Box", "fc.1"}));
  box.register_parameter("gamma", Variable(zeros({1})));
  BOOST_CHECK_EXCEPTION(box.register_parameter("gamma", Variable(zeros({1}))), Error, mentions({"Box", "gamma"}));
  BOOST_CHECK_EXCEPTION(box.register_buffer("gamma", zeros({1})), Error, mentions({"Box", "gamma"}));
  BOOST_CHECK_EXCEPTION(box.register_module("gamma", std::make_shared<ReLU>()), Error, mentions({"Box", "gamma"}));
  // The refused calls registered nothing.
  BOOST_TEST(names(box.parameters()) == (Names{"gamma"}), tt::per_element());
  BOOST_TEST(box.buffers().empty());
  BOOST_TEST(box.children().empty());

  Sequential seq;
  seq.add("fc", std::make_shared<Linear>(2, 2));
  BOOST_CHECK_EXCEPTION(seq.add("fc", std::make_shared<ReLU>()), Error, mentions({"Sequential", "fc"}));
  BOOST_CHECK_EXCEPTION(seq.add("a.b", std::make_shared<ReLU>()), Error, mentions({"Sequential", "a.b"}));
  BOOST_TEST(seq.size() == 1u);
}

BOOST_AUTO_TEST_CASE(null_self_and_cycles_are_refused) {
  auto box = std::make_shared<Box>();
  BOOST_CHECK_EXCEPTION(box->register_module("missing", std::shared_ptr<ReLU>()), Error, mentions({"Box", "missing"}));
  BOOST_CHECK_EXCEPTION(box->register_module("me", box), Error, mentions({"Box", "me"}));
  // box -> crate, then crate -> box.
  auto crate = std::make_shared<Crate>();
  box->register_module("crate", crate);
  BOOST_CHECK_EXCEPTION(crate->register_module("box", box), Error, mentions({"Crate", "box"}));
  // box -> crate -> seq, then seq -> box: a longer cycle.
  auto seq = std::make_shared<Sequential>();
  crate->register_module("seq", seq);
  BOOST_CHECK_EXCEPTION(seq->add("outer", box), Error, mentions({"Sequential", "outer"}));
  BOOST_TEST(names(box->named_children()) == (Names{"crate"}), tt::per_element());
  BOOST_TEST(names(crate->named_children()) == (Names{"seq"}), tt::per_element());
  BOOST_TEST(seq->children().empty());
  BOOST_TEST(seq->size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(describe_tree)

BOOST_AUTO_TEST_CASE(describe_prints_the_tree_with_each_layers_repr) {
  Classifier model;
  BOOST_TEST(model.repr() == "Classifier");  // the default: the class name
  BOOST_TEST(model.drop->describe() == "Dropout(p=0.5)");  // a leaf prints its repr()
  BOOST_TEST(model.describe() ==
             "Classifier(\n"
             "  (body): Sequential(\n"
             "    (0): Linear(in_features=4, out_features=3, bias=true)\n"
             "    (1): ReLU()\n"
             "  )\n"
             "  (drop): Dropout(p=0.5)\n"
             ")");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(options_and_layers)

BOOST_AUTO_TEST_CASE(conv2d_from_options) {
  const Conv2dOptions options = Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2);
  BOOST_TEST(options.stride() == 2);
  BOOST_TEST(options.padding() == 1);
  BOOST_TEST(options.groups() == 2);
  BOOST_TEST(options.bias());
  Rng rng(14);
  Conv2d conv(options, rng);
  BOOST_TEST(conv.describe() == "Conv2d(4, 6, kernel_size=3, stride=2, padding=1, groups=2, bias=true)");
  BOOST_TEST(conv.weight().shape() == (Shape{6, 2, 3, 3}), tt::per_element());
  Variable x(random_tensor({2, 4, 5, 5}, 15), true, "input");
  {
    NoGradGuard no_grad;
    const Variable y = conv(x);
    BOOST_TEST(y.shape() == (Shape{2, 6, 3, 3}), tt::per_element());  // (5 + 2 - 3) / 2 + 1
    // The layer is its functional form with the same options.
    const auto same = Conv2dFuncOptions().stride(2).padding(1).groups(2);
    BOOST_TEST((functional::conv2d(x, conv.weight(), conv.bias(), same).value() == y.value()));
  }
  check_layer_gradients(conv, x);
  Conv2d plain(Conv2dOptions(4, 6, 3).bias(false), rng);
  BOOST_TEST(plain.describe() == "Conv2d(4, 6, kernel_size=3, stride=1, padding=0, groups=1, bias=false)");
  BOOST_TEST(!plain.bias().defined());
}

BOOST_AUTO_TEST_CASE(max_pool2d_from_options) {
  MaxPool2d pool(MaxPool2dOptions(3).stride(2).padding(1));
  BOOST_TEST(pool.describe() == "MaxPool2d(kernel_size=3, stride=2, padding=1)");
  BOOST_TEST(MaxPool2d(MaxPool2dOptions(3)).describe() == "MaxPool2d(kernel_size=3, stride=3, padding=0)");
  Variable x(distinct_values({2, 2, 6, 6}, 16), true, "input");
  {
    NoGradGuard no_grad;
    BOOST_TEST(pool(x).shape() == (Shape{2, 2, 3, 3}), tt::per_element());  // (6 + 2 - 3) / 2 + 1
  }
  check_layer_gradients(pool, x);
}

BOOST_AUTO_TEST_CASE(local_response_norm_from_options) {
  const LrnOptions options = LrnOptions(3).alpha(1e-2).beta(0.75).k(2.0);
  BOOST_TEST(options.size() == 3);
  BOOST_TEST(options.alpha() == 1e-2);
  BOOST_TEST(options.beta() == 0.75);
  BOOST_TEST(options.k() == 2.0);
  LocalResponseNorm lrn(options);
  BOOST_TEST(lrn.describe() == "LocalResponseNorm(size=3, alpha=0.01, beta=0.75, k=2)");
  Variable x(random_tensor({2, 5, 3, 3}, 17), true, "input");
  // The options reach the kernel: y = x (k + alpha/3 sum_{j = c-1..c+1} x_j^2)^-beta.
  {
    NoGradGuard no_grad;
    const Tensor y = lrn(x).value();
    const std::size_t C = 5, S = 9;
    for (std::size_t n = 0; n < 2; ++n)
      for (std::size_t c = 0; c < C; ++c)
        for (std::size_t s = 0; s < S; ++s) {
          double squares = 0.0;
          for (std::size_t j = c == 0 ? 0 : c - 1; j <= std::min(c + 1, C - 1); ++j) {
            const double v = x.value().data()[(n * C + j) * S + s];
            squares += v * v;
          }
          const double xv = x.value().data()[(n * C + c) * S + s];
          const double expected = xv * std::pow(2.0 + 1e-2 / 3.0 * squares, -0.75);
          BOOST_TEST(y.data()[(n * C + c) * S + s] == expected, tt::tolerance(1e-5));
        }
  }
  check_layer_gradients(lrn, x);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(functional_forms)

BOOST_AUTO_TEST_CASE(conv2d_with_and_without_bias) {
  Variable x(random_tensor({2, 4, 5, 5}, 20), true, "x");
  Variable w(random_tensor({6, 2, 3, 3}, 21), true, "weight");
  Variable b(random_tensor({6}, 22), true, "bias");
  const auto options = Conv2dFuncOptions().stride(2).padding(1).groups(2);
  check_gradients([&] { return functional::conv2d(x, w, b, options); }, {x, w, b});
  check_gradients([&] { return functional::conv2d(x, w, Variable(), options); }, {x, w});
}

BOOST_AUTO_TEST_CASE(linear_with_and_without_bias) {
  Variable x(random_tensor({3, 5}, 23), true, "x");
  Variable w(random_tensor({4, 5}, 24), true, "weight");
  Variable b(random_tensor({4}, 25), true, "bias");
  check_gradients([&] { return functional::linear(x, w, b); }, {x, w, b});
  check_gradients([&] { return functional::linear(x, w, Variable()); }, {x, w});
}

BOOST_AUTO_TEST_CASE(max_pool2d_overlapping_padded_windows) {
  Variable x(distinct_values({2, 3, 7, 7}, 26), true, "x");
  check_gradients([&] { return functional::max_pool2d(x, MaxPool2dOptions(3).stride(2).padding(1)); }, {x});
}

BOOST_AUTO_TEST_CASE(local_response_norm_across_channels) {
  Variable x(random_tensor({2, 6, 3, 3}, 27), true, "x");
  // alpha large enough that the cross-channel term of the gradient is well above the tolerance.
  check_gradients([&] { return functional::local_response_norm(x, LrnOptions(3).alpha(0.5).beta(0.75).k(1.0)); }, {x});
}

BOOST_AUTO_TEST_CASE(relu_away_from_its_kink) {
  Variable x(signed_values({3, 4, 5}, 28), true, "x");
  check_gradients([&] { return functional::relu(x); }, {x});
}

BOOST_AUTO_TEST_CASE(dropout_with_a_fixed_mask) {
  Variable x(random_tensor({4, 50}, 29), true, "x");
  const DropoutMask mask{0.5, 7, 3};
  check_gradients([&] { return functional::dropout(x, mask, true); }, {x});
  NoGradGuard no_grad;
  BOOST_TEST((functional::dropout(x, mask, false).value() == x.value()));  // not training: the identity
}

BOOST_AUTO_TEST_CASE(cross_entropy_of_a_batch) {
  Variable logits(random_tensor({3, 5}, 30), true, "logits");
  const std::vector<std::int64_t> labels{1, 4, 0};
  check_gradients([&] { return functional::cross_entropy(logits, labels); }, {logits});
}

BOOST_AUTO_TEST_CASE(a_planted_gradient_error_is_caught) {
  Variable x(signed_values({3, 7}, 31), true, "x");
  const GradcheckResult right = gradcheck([&] { return relu_with_scaled_backward(x, 1.0f); }, {x});
  BOOST_TEST(right.ok, right.summary());
  const GradcheckResult wrong = gradcheck([&] { return relu_with_scaled_backward(x, 1.1f); }, {x});
  BOOST_TEST(!wrong.ok, wrong.summary());
  BOOST_TEST(wrong.worst_input == "x");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sgd_options)

BOOST_AUTO_TEST_CASE(setters_are_read_back) {
  Variable p(zeros({2}), true);
  optim::SGD sgd({{"p", p}}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4).nesterov(true));
  BOOST_TEST(sgd.options().lr() == 0.1);
  BOOST_TEST(sgd.options().momentum() == 0.9);
  BOOST_TEST(sgd.options().weight_decay() == 1e-4);
  BOOST_TEST(sgd.options().nesterov());
  BOOST_TEST(sgd.lr() == 0.1);
  const optim::SGDOptions defaults(0.5);
  BOOST_TEST(defaults.momentum() == 0.0);
  BOOST_TEST(defaults.weight_decay() == 0.0);
  BOOST_TEST(!defaults.nesterov());
}

BOOST_AUTO_TEST_CASE(invalid_values_name_sgd_and_the_option) {
  Variable p(zeros({2}), true);
  auto make = [&](const optim::SGDOptions& options) { optim::SGD sgd({{"p", p}}, options); };
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.0)), Error, mentions({"SGD", "lr"}));
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(-0.1)), Error, mentions({"SGD", "lr"}));
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).nesterov(true)), Error, mentions({"SGD", "nesterov", "momentum"}));
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).momentum(-0.5)), Error, mentions({"SGD", "momentum"}));
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).weight_decay(-1.0)), Error, mentions({"SGD", "weight_decay"}));
}

BOOST_AUTO_TEST_SUITE_END()
