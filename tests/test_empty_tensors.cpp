// Empty tensors: a dimension of 0, in every position an op or layer allows, forward and backward.
// As in PyTorch, an empty batch runs through every layer (and a whole model) and gives an empty
// output of the right shape; a 0 elsewhere works wherever the geometry allows it. After
// sum(y).backward(), every input and parameter has a gradient of its own shape, all zeros (an
// empty input has an empty gradient; a non-empty one, like a bias added to an empty batch, has
// zeros). The errors that stay (mean of nothing, CrossEntropyLoss on an empty batch, a
// convolution over an empty image) are in test_bad_inputs.
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "examples/models.hpp"
#include <xgrad/xgrad.hpp>

#include "tests/test_util.hpp"

using namespace xgrad;

namespace {

struct EmptyCase {
  std::string name;
  std::vector<Shape> inputs;                                      // each a Variable requiring grad
  std::function<Variable(const std::vector<Variable>&)> apply;    // the op or layer call
  Shape expected;                                                 // the output's shape
  std::shared_ptr<Layer> layer = nullptr;                         // its parameters are checked too
};

std::ostream& operator<<(std::ostream& out, const EmptyCase& c) { return out << c.name; }

// A layer case: the layer applied to the one input.
EmptyCase layer_case(std::string name, std::shared_ptr<Layer> layer, Shape input, Shape expected) {
  return {std::move(name), {std::move(input)}, [layer](const std::vector<Variable>& in) { return (*layer)(in[0]); },
          std::move(expected), layer};
}

// An op case on the given inputs.
EmptyCase op_case(std::string name, std::vector<Shape> inputs, std::function<Variable(const std::vector<Variable>&)> f,
                  Shape expected) {
  return {std::move(name), std::move(inputs), std::move(f), std::move(expected)};
}

std::vector<EmptyCase> make_cases() {
  std::vector<EmptyCase> cases;
  using In = const std::vector<Variable>&;

  // --- elementwise ops and broadcasting
  cases.push_back(op_case("add empty batch", {{0, 3}, {0, 3}}, [](In v) { return add(v[0], v[1]); }, {0, 3}));
  cases.push_back(op_case("add bias row to empty batch", {{0, 3}, {3}}, [](In v) { return add(v[0], v[1]); }, {0, 3}));
  cases.push_back(op_case("add zero features", {{2, 0}, {0}}, [](In v) { return add(v[0], v[1]); }, {2, 0}));
  cases.push_back(op_case("add broadcast over empty middle", {{2, 0, 3}, {1, 1, 3}}, [](In v) { return add(v[0], v[1]); }, {2, 0, 3}));
  cases.push_back(op_case("sub bias row from empty batch", {{0, 4}, {4}}, [](In v) { return sub(v[0], v[1]); }, {0, 4}));
  cases.push_back(op_case("mul bias row with empty batch", {{0, 3}, {3}}, [](In v) { return mul(v[0], v[1]); }, {0, 3}));
  cases.push_back(op_case("mul empty middle", {{4, 0, 2}, {4, 0, 2}}, [](In v) { return mul(v[0], v[1]); }, {4, 0, 2}));
  cases.push_back(op_case("scale empty", {{0, 5}}, [](In v) { return scale(v[0], 3.0f); }, {0, 5}));
  cases.push_back(op_case("relu empty vector", {{0}}, [](In v) { return relu(v[0]); }, {0}));
  cases.push_back(op_case("relu empty middle", {{2, 0, 3}}, [](In v) { return relu(v[0]); }, {2, 0, 3}));

  // --- matmul: 0 as m, n or k (k = 0 gives a zero product)
  cases.push_back(op_case("matmul m 0", {{0, 3}, {3, 4}}, [](In v) { return matmul(v[0], v[1]); }, {0, 4}));
  cases.push_back(op_case("matmul n 0", {{2, 3}, {3, 0}}, [](In v) { return matmul(v[0], v[1]); }, {2, 0}));
  cases.push_back(op_case("matmul k 0", {{2, 0}, {0, 3}}, [](In v) { return matmul(v[0], v[1]); }, {2, 3}));
  cases.push_back(op_case("matmul transposed m 0", {{3, 0}, {3, 4}}, [](In v) { return matmul(v[0], v[1], true); }, {0, 4}));
  cases.push_back(op_case("matmul transposed k 0", {{2, 0}, {3, 0}}, [](In v) { return matmul(v[0], v[1], false, true); }, {2, 3}));

  // --- shapes and reductions
  cases.push_back(op_case("reshape empty", {{0, 6}}, [](In v) { return reshape(v[0], {3, 0, 2}); }, {3, 0, 2}));
  cases.push_back(op_case("flatten empty batch", {{0, 3, 4}}, [](In v) { return flatten(v[0]); }, {0, 12}));
  cases.push_back(op_case("flatten empty features", {{2, 0, 4}}, [](In v) { return flatten(v[0]); }, {2, 0}));
  cases.push_back(op_case("sum of empty vector", {{0}}, [](In v) { return sum(v[0]); }, {}));
  cases.push_back(op_case("sum of empty middle", {{3, 0, 2}}, [](In v) { return sum(v[0]); }, {}));

  // --- layers: the empty batch
  cases.push_back(layer_case("Linear empty batch", std::make_shared<Linear>(4, 3), {0, 4}, {0, 3}));
  cases.push_back(layer_case("Linear without bias empty batch", std::make_shared<Linear>(4, 3, false), {0, 4}, {0, 3}));
  cases.push_back(layer_case("ReLU empty batch", std::make_shared<ReLU>(), {0, 5}, {0, 5}));
  cases.push_back(layer_case("Dropout empty batch", std::make_shared<Dropout>(0.5, 3), {0, 10}, {0, 10}));
  cases.push_back(layer_case("Flatten empty batch", std::make_shared<Flatten>(), {0, 3, 2, 2}, {0, 12}));
  cases.push_back(layer_case("Flatten empty channels", std::make_shared<Flatten>(), {2, 0, 2, 2}, {2, 0}));
  cases.push_back(layer_case("Conv2d empty batch", std::make_shared<Conv2d>(3, 4, 3), {0, 3, 5, 5}, {0, 4, 3, 3}));
  cases.push_back(layer_case("Conv2d empty batch with stride padding groups",
                             std::make_shared<Conv2d>(Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2)), {0, 4, 7, 7},
                             {0, 6, 4, 4}));
  cases.push_back(layer_case("Conv2d without bias empty batch", std::make_shared<Conv2d>(Conv2dOptions(2, 2, 1).bias(false)),
                             {0, 2, 3, 3}, {0, 2, 3, 3}));
  cases.push_back(layer_case("MaxPool2d empty batch", std::make_shared<MaxPool2d>(MaxPool2dOptions(3).stride(2)), {0, 2, 7, 7},
                             {0, 2, 3, 3}));
  cases.push_back(layer_case("MaxPool2d padded empty batch", std::make_shared<MaxPool2d>(MaxPool2dOptions(2).padding(1)),
                             {0, 1, 4, 4}, {0, 1, 3, 3}));
  cases.push_back(layer_case("LRN empty batch", std::make_shared<LocalResponseNorm>(5), {0, 6, 3, 3}, {0, 6, 3, 3}));
  cases.push_back(layer_case("LRN empty channels", std::make_shared<LocalResponseNorm>(5), {2, 0, 3, 3}, {2, 0, 3, 3}));
  cases.push_back(layer_case("LRN empty height", std::make_shared<LocalResponseNorm>(5), {2, 6, 0, 3}, {2, 6, 0, 3}));
  cases.push_back(layer_case("LRN empty inner rank 3", std::make_shared<LocalResponseNorm>(3), {2, 6, 0}, {2, 6, 0}));
  cases.push_back(layer_case("LRN long window empty batch", std::make_shared<LocalResponseNorm>(11), {0, 12, 3, 3},
                             {0, 12, 3, 3}));
  cases.push_back(layer_case("LRN within channel empty batch",
                             std::make_shared<LocalResponseNorm>(LrnOptions(3).mode(LrnMode::WithinChannel)), {0, 2, 4, 4},
                             {0, 2, 4, 4}));
  cases.push_back(layer_case("LRN within channel empty width",
                             std::make_shared<LocalResponseNorm>(LrnOptions(3).mode(LrnMode::WithinChannel)), {2, 2, 4, 0},
                             {2, 2, 4, 0}));
  {
    auto mlp = std::make_shared<Sequential>();
    mlp->emplace<Linear>(4, 8);
    mlp->emplace<ReLU>();
    mlp->emplace<Dropout>(0.5, 1);
    mlp->emplace<Linear>(8, 3);
    cases.push_back(layer_case("Sequential of Linear ReLU Dropout Linear empty batch", mlp, {0, 4}, {0, 3}));
  }
  {
    auto convnet = std::make_shared<Sequential>();
    convnet->emplace<Conv2d>(Conv2dOptions(3, 4, 3).padding(1));
    convnet->emplace<ReLU>();
    convnet->emplace<LocalResponseNorm>(3);
    convnet->emplace<MaxPool2d>(2);
    convnet->emplace<Flatten>();
    convnet->emplace<Linear>(4 * 4 * 4, 5);
    cases.push_back(layer_case("Sequential conv net empty batch", convnet, {0, 3, 8, 8}, {0, 5}));
  }
  cases.push_back(layer_case("AlexNet mini empty batch", examples::make_alexnet_model("mini", 10, 0.5), {0, 3, 64, 64},
                             {0, 10}));
  return cases;
}

const std::vector<EmptyCase>& cases() {
  static const std::vector<EmptyCase> all = make_cases();
  return all;
}

// Every element of t is exactly 0.
bool all_zero(const Tensor& t) {
  for (float v : t) {
    if (v != 0.0f) return false;
  }
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(empty_tensors)

BOOST_AUTO_TEST_CASE(the_table_covers_every_op_and_layer) { BOOST_TEST(cases().size() >= 40u); }

// One test case per row: forward gives the expected (empty) shape, backward runs, and every
// gradient exists with its Variable's shape and is all zeros.
BOOST_DATA_TEST_CASE(forward_and_backward_with_a_zero_dimension, boost::unit_test::data::make(cases()), c) {
  Tape::active().clear();
  std::vector<Variable> inputs;
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    inputs.emplace_back(test::random_tensor(c.inputs[i], 10 + i), true, "input " + std::to_string(i));
  }
  if (c.layer) c.layer->zero_grad();
  Variable y = c.apply(inputs);
  BOOST_TEST(shape_str(y.shape()) == shape_str(c.expected));
  // A product over an empty inner dimension, and a sum of nothing, are exactly 0.
  BOOST_TEST(all_zero(y.value()) == true, "the output of " << c.name << " is not all zeros");
  Variable total = sum(y);
  BOOST_TEST(total.value()() == 0.0f);
  total.backward();
  for (const Variable& x : inputs) {
    BOOST_REQUIRE_MESSAGE(x.has_grad(), x.name() << " has no gradient");
    BOOST_TEST(shape_str(x.grad().shape()) == shape_str(x.shape()), x.name());
    BOOST_TEST(all_zero(x.grad()) == true, x.name() << "'s gradient is not all zeros");
  }
  if (c.layer) {
    for (const auto& p : c.layer->parameters()) {
      BOOST_REQUIRE_MESSAGE(p.variable.has_grad(), p.name << " has no gradient");
      BOOST_TEST(shape_str(p.variable.grad().shape()) == shape_str(p.variable.shape()), p.name);
      BOOST_TEST(all_zero(p.variable.grad()) == true, p.name << "'s gradient is not all zeros");
    }
  }
}

// The same at 1 and 2 threads: the kernels' parallel paths see an empty batch too.
BOOST_AUTO_TEST_CASE(an_empty_batch_through_alexnet_at_one_and_two_threads) {
  for (int threads : {1, 2}) {
    test::ThreadCount guard(threads);
    auto model = examples::make_alexnet_model("mini", 10, 0.5);
    Variable x(empty({0, 3, 64, 64}), true);
    Variable y = (*model)(x);
    BOOST_TEST(shape_str(y.shape()) == "(0, 10)");
    sum(y).backward();
    for (const auto& p : model->parameters()) {
      BOOST_REQUIRE(p.variable.has_grad());
      BOOST_TEST(all_zero(p.variable.grad()) == true, p.name);
    }
  }
}

// An SGD step on the zero gradients of an empty batch leaves the parameters as they were.
BOOST_AUTO_TEST_CASE(an_sgd_step_after_an_empty_batch_changes_nothing) {
  Linear fc(4, 3);
  const Tensor before = fc.weight().value();
  optim::SGD opt(fc.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  sum(fc(Variable(empty({0, 4}), true))).backward();
  opt.step();
  BOOST_TEST(fc.weight().value() == before);
}

// The tensor helpers, the initialisers and sum_to_shape on empty shapes.
BOOST_AUTO_TEST_CASE(helpers_and_initialisers_on_empty_shapes) {
  BOOST_TEST(zeros({0}).size() == 0u);
  BOOST_TEST(shape_str(full({2, 0}, 1.0f).shape()) == "(2, 0)");
  BOOST_TEST(shape_str(empty({0, 0, 3}).shape()) == "(0, 0, 3)");
  Rng rng(5);
  Tensor w = empty({0, 3});
  rng.fill_uniform(w, -1.0, 1.0);
  rng.fill_normal(w, 0.0, 1.0);
  BOOST_TEST(w.size() == 0u);
  // The gradient of a bias row added to an empty batch: zeros of the bias's shape.
  const Tensor reduced = sum_to_shape(zeros({0, 3}), {3});
  BOOST_TEST(shape_str(reduced.shape()) == "(3,)");
  BOOST_TEST(all_zero(reduced) == true);
  BOOST_TEST(shape_str(broadcast_shape("add", {0, 1}, {1, 5})) == "(0, 5)");
}

BOOST_AUTO_TEST_SUITE_END()
