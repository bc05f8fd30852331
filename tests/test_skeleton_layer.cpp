// The skeleton layer (examples/skeleton_layer.hpp), tested as every new layer must be: its
// forward against the definition, its gradients through the checker (and a planted error
// caught), bit-identical results at 1 and 2 threads, its errors, and its registered parameter.
#include <cstring>
#include <memory>
#include <tuple>
#include <utility>

#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>
#include "examples/skeleton_layer.hpp"
#include "tests/test_util.hpp"

namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::examples::Scale;
using xgrad::test::mentions;
using xgrad::test::random_tensor;
using xgrad::test::ThreadCount;

namespace {

// examples::scale's value with a copy of its backward that forgets to add into dweight.
Variable scale_without_dweight(const Variable& x, const Variable& weight) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = examples::scale(x, weight).value();
  }
  const std::size_t C = weight.size(), S = x.size() / (x.shape()[0] * C);
  return record_op("scale_without_dweight", std::move(y), {x, weight}, [x, weight, C, S](const Tensor& dy) {
    float* dx = x.grad_buffer().data();
    for (std::size_t i = 0; i < dy.size(); ++i) dx[i] += dy.data()[i] * weight.value().data()[(i / S) % C];
  });
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(skeleton_layer)

BOOST_AUTO_TEST_CASE(forward_matches_the_definition) {
  Scale layer(3);
  layer.weight().mutable_value() = random_tensor({3}, 1);
  const Variable x(random_tensor({2, 3, 4, 5}, 2));
  NoGradGuard no_grad;
  const Tensor y = layer(x).value();
  BOOST_TEST_REQUIRE(y.shape() == x.value().shape(), tt::per_element());
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t s = 0; s < 20; ++s) {
        const std::size_t i = (n * 3 + c) * 20 + s;
        BOOST_TEST(y.data()[i] == x.value().data()[i] * layer.weight().value()(c));
      }
}

BOOST_AUTO_TEST_CASE(gradients_of_the_input_and_the_weight) {
  for (const Shape& shape : {Shape{4, 3}, Shape{2, 3, 5}, Shape{2, 3, 2, 3}}) {
    Scale layer(3);
    layer.weight().mutable_value() = random_tensor({3}, 3);  // not ones: dx must use the weight
    const Variable x(random_tensor(shape, 4), true, "input");
    const GradcheckResult r = gradcheck(layer, x);
    BOOST_TEST(r.ok, r.summary());
    BOOST_TEST(r.checked == x.size() + 3u);  // every element of the input and of the weight
  }
}

BOOST_AUTO_TEST_CASE(a_planted_error_in_the_backward_is_caught) {
  const Variable x(random_tensor({2, 3, 4}, 5), true, "input");
  const Variable w(random_tensor({3}, 6, 0.5, 1.5), true, "w");
  const GradcheckResult right = gradcheck([&] { return examples::scale(x, w); }, {x, w});
  BOOST_TEST(right.ok, right.summary());
  const GradcheckResult wrong = gradcheck([&] { return scale_without_dweight(x, w); }, {x, w});
  BOOST_TEST(!wrong.ok, wrong.summary());
  BOOST_TEST(wrong.worst_input == "w");
}

BOOST_AUTO_TEST_CASE(bit_identical_at_one_and_two_threads) {
  const Tensor x0 = random_tensor({4, 16, 32, 32}, 7), dy = random_tensor({4, 16, 32, 32}, 8);
  auto run = [&](int threads) {
    ThreadCount guard(threads);
    Scale layer(16);
    layer.weight().mutable_value() = random_tensor({16}, 9);
    const Variable x(x0, true);
    const Variable y = layer(x);
    y.backward(dy);
    return std::make_tuple(Tensor(y.value()), Tensor(x.grad()), Tensor(layer.weight().grad()));
  };
  const auto one = run(1), two = run(2);
  BOOST_TEST(same_bits(std::get<0>(one), std::get<0>(two)));
  BOOST_TEST(same_bits(std::get<1>(one), std::get<1>(two)));
  BOOST_TEST(same_bits(std::get<2>(one), std::get<2>(two)));
}

BOOST_AUTO_TEST_CASE(bad_arguments_and_inputs_are_refused_with_their_shapes) {
  BOOST_CHECK_EXCEPTION(Scale(0), Error, mentions({"Scale", "channels", "got 0"}));
  Scale layer(3);
  BOOST_CHECK_EXCEPTION(layer(Variable(zeros({5}))), Error, mentions({"Scale", "input", "rank >= 2", "(5,)"}));
  BOOST_CHECK_EXCEPTION(layer(Variable(zeros({2, 4, 5}))), Error, mentions({"Scale", "weight", "(3,)", "(2, 4, 5)"}));
  BOOST_CHECK_EXCEPTION(layer(Variable()), Error, mentions({"Scale", "undefined"}));
  // The layer still works after refusing bad input.
  BOOST_TEST(layer(Variable(zeros({2, 3, 5}))).shape() == (Shape{2, 3, 5}), tt::per_element());
}

BOOST_AUTO_TEST_CASE(the_weight_is_registered_and_starts_at_one) {
  Scale layer(4);
  const auto params = layer.parameters();
  BOOST_TEST_REQUIRE(params.size() == 1u);
  BOOST_TEST(params[0].name == "weight");
  BOOST_TEST(params[0].variable.same(layer.weight()));
  BOOST_TEST(params[0].variable.requires_grad());
  BOOST_TEST((layer.weight().value() == full<float>({4}, 1.0f)));
  BOOST_TEST(layer.describe() == "Scale(channels=4)");
  // Inside a model, under its path.
  Sequential model;
  model.add("scale", std::make_shared<Scale>(4));
  BOOST_TEST(model.parameters().at(0).name == "scale.weight");
}

BOOST_AUTO_TEST_SUITE_END()
