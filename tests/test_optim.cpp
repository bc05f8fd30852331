// optim/: SGD's update rule (PyTorch's) and validation; the schedules are in test_lr_scheduler.
#include <boost/test/unit_test.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/optim/sgd.hpp>
#include "tests/test_util.hpp"

namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::test::message_contains;
using xgrad::test::message_has;

BOOST_AUTO_TEST_SUITE(sgd)

BOOST_AUTO_TEST_CASE(momentum_weight_decay_nesterov_follow_the_reference_rule) {
  for (bool nesterov : {false, true}) {
    Variable p(Tensor(xt::xarray<float>({1.0f, -2.0f})), true, "p");
    optim::SGD opt({{"p", p}}, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01).nesterov(nesterov));
    // Reference in double, written out from the rule.
    double ref[2] = {1.0, -2.0}, buf[2] = {0, 0};
    const double grads[3][2] = {{0.5, -1.0}, {0.25, 2.0}, {-1.0, 0.5}};
    for (int step = 0; step < 3; ++step) {
      p.reset_grad();
      p.add_grad(Tensor(xt::xarray<float>({float(grads[step][0]), float(grads[step][1])})), "test");
      opt.step();
      for (int j = 0; j < 2; ++j) {
        double d = grads[step][j] + 0.01 * ref[j];
        buf[j] = step == 0 ? d : 0.9 * buf[j] + d;
        d = nesterov ? d + 0.9 * buf[j] : buf[j];
        ref[j] -= 0.1 * d;
        BOOST_TEST(p.value()(j) == ref[j], tt::tolerance(1e-5));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(plain_sgd_and_skipped_parameters) {
  Variable p(Tensor(xt::xarray<float>({1.0f})), true), q(Tensor(xt::xarray<float>({5.0f})), true);
  optim::SGD opt({{"p", p}, {"q", q}}, {0.5});
  p.add_grad(Tensor(xt::xarray<float>({2.0f})), "test");
  opt.step();
  BOOST_TEST(p.value()(0) == 0.0f);
  BOOST_TEST(q.value()(0) == 5.0f);  // no gradient: untouched
  opt.zero_grad();
  BOOST_TEST(p.grad()(0) == 0.0f);
}

// A Variable listed twice (here under two names, and once through a copy of its handle) is one
// parameter: one step moves it once, and its momentum is kept once.
BOOST_AUTO_TEST_CASE(a_variable_given_twice_is_stepped_once) {
  Variable p(Tensor(xt::xarray<float>({1.0f})), true);
  Variable same = p;
  optim::SGD opt({{"p", p}, {"alias", same}, {"p", p}}, optim::SGDOptions(0.5).momentum(0.9));
  p.add_grad(Tensor(xt::xarray<float>({2.0f})), "test");
  opt.step();
  BOOST_TEST(p.value()(0) == 0.0f);  // 1 - 0.5 * 2, not 1 - 3 * 0.5 * 2
  opt.step();                        // buf = 0.9 * 2 + 2
  BOOST_TEST(p.value()(0) == -1.9f);
}

BOOST_AUTO_TEST_CASE(invalid_settings_are_rejected) {
  Variable p(zeros({1}), true);
  auto make = [&](optim::SGDOptions o) { optim::SGD s({{"p", p}}, o); };
  BOOST_CHECK_EXCEPTION(make({0.0}), Error, [](const Error& e) { return message_contains(e, "lr"); });
  BOOST_CHECK_EXCEPTION(make({std::nan("")}), Error, [](const Error& e) { return message_contains(e, "lr"); });
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).momentum(-0.5)), Error, [](const Error& e) { return message_contains(e, "momentum"); });
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).momentum(0.9).weight_decay(-1.0)), Error, [](const Error& e) { return message_contains(e, "weight_decay"); });
  BOOST_CHECK_EXCEPTION(make(optim::SGDOptions(0.1).nesterov(true)), Error, [](const Error& e) { return message_contains(e, "nesterov"); });
}

BOOST_AUTO_TEST_SUITE_END()
