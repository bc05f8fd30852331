// Flatten: (N, ...) -> (N, prod), values in row-major order, gradient reshaped back.
#include <boost/test/unit_test.hpp>

#include <string>

#include <xgrad/autograd/gradcheck.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/layers/flatten.hpp>

using namespace xgrad;

BOOST_AUTO_TEST_SUITE(flatten_layer)

BOOST_AUTO_TEST_CASE(flattens_all_but_the_batch_dimension) {
  Flatten flat;
  Tensor v = empty({2, 3, 2, 2});
  for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = static_cast<float>(i);
  const Variable y = flat(Variable(v));
  BOOST_TEST((y.shape() == Shape{2, 12}));
  for (std::size_t i = 0; i < v.size(); ++i) BOOST_TEST(y.value().data()[i] == static_cast<float>(i));
  BOOST_TEST((flat(Variable(zeros({5}))).shape() == Shape{5, 1}));
  BOOST_TEST(flat.describe() == "Flatten()");
}

BOOST_AUTO_TEST_CASE(gradients_on_the_tape) {
  Flatten flat;
  Tensor v = empty({3, 2, 4});
  Rng rng(1);
  rng.fill_uniform(v, -1.0, 1.0);
  Variable x(v, true, "x");
  const GradcheckResult r = gradcheck(flat, x);
  BOOST_TEST(r.ok, r.summary());
}

BOOST_AUTO_TEST_CASE(invalid_input_throws_naming_the_layer) {
  Flatten flat;
  auto names_flatten = [](const Error& e) { return std::string(e.what()).find("Flatten()") != std::string::npos; };
  BOOST_CHECK_EXCEPTION(flat(Variable(full<float>({}, 1.0f))), Error, names_flatten);
  BOOST_CHECK_EXCEPTION(flat(Variable()), Error, names_flatten);
}

BOOST_AUTO_TEST_SUITE_END()
