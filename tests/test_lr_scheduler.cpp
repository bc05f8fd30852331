// optim/lr_scheduler: the step schedule, and the warm-up + cosine schedule that alexnet_example
// trains with (its rates pinned to the values the example used before the schedule moved here).
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/optim/lr_scheduler.hpp>
#include "tests/test_util.hpp"

namespace tt = boost::test_tools;
using namespace xgrad;
using xgrad::test::message_has;

namespace {

// The optimiser's rate at each of `steps` steps under WarmupCosineLR(total_steps), peak 0.01.
std::vector<double> warmup_cosine_rates(std::size_t total_steps, std::size_t steps) {
  Variable p(zeros({1}), true);
  optim::SGD opt({{"p", p}}, {0.01});
  optim::WarmupCosineLR schedule(opt, total_steps);
  std::vector<double> rates;
  for (std::size_t t = 0; t < steps; ++t) {
    BOOST_TEST(schedule.lr() == opt.lr());
    BOOST_TEST(schedule.steps() == t);
    rates.push_back(opt.lr());
    schedule.step();
  }
  return rates;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(lr_scheduler)

BOOST_AUTO_TEST_CASE(step_lr_schedule) {
  Variable p(zeros({1}), true);
  optim::SGD opt({{"p", p}}, {1.0});
  optim::StepLR schedule(opt, 2, 0.5);
  const double expected[] = {1.0, 0.5, 0.5, 0.25, 0.25};
  for (double lr : expected) {
    schedule.step();
    BOOST_TEST(opt.lr() == lr, tt::tolerance(1e-12));
  }
  BOOST_CHECK_THROW(optim::StepLR(opt, 0), Error);
}

// alexnet_example's default run: 320 steps (5120 images, batch 64, 4 epochs), so 16 warm-up
// steps. Exact values: any change here changes the example's training.
BOOST_AUTO_TEST_CASE(warmup_cosine_matches_the_example_schedule) {
  const std::vector<double> rates = warmup_cosine_rates(320, 330);
  BOOST_TEST(rates[0] == 0.00062500000000000001);   // 1/16 of the peak
  BOOST_TEST(rates[15] == 0.01);                    // end of the warm-up: the peak
  BOOST_TEST(rates[167] == 0.0050500000000000007);  // half-way through the decay
  BOOST_TEST(rates[319] == 0.0001);                 // last step: 1% of the peak
  for (std::size_t t = 1; t < 16; ++t) BOOST_TEST(rates[t] > rates[t - 1]);
  for (std::size_t t = 16; t < 320; ++t) BOOST_TEST(rates[t] < rates[t - 1]);
  for (std::size_t t = 320; t < 330; ++t) BOOST_TEST(rates[t] == rates[319]);  // past the end: the floor
}

// A warm-up shorter than one step (0.05 * 8 < 1) is one step: step 0 runs at the peak.
BOOST_AUTO_TEST_CASE(warmup_cosine_with_less_than_one_warmup_step) {
  const std::vector<double> rates = warmup_cosine_rates(8, 8);
  BOOST_TEST(rates[0] == 0.01);
  BOOST_TEST(rates[7] == 0.0001);
}

BOOST_AUTO_TEST_CASE(warmup_cosine_rejects_bad_settings) {
  Variable p(zeros({1}), true);
  optim::SGD opt({{"p", p}}, {0.1});
  auto rejects = [&](std::size_t total, double warmup, double final_fraction, const char* parameter) {
    BOOST_CHECK_EXCEPTION(optim::WarmupCosineLR(opt, total, warmup, final_fraction), Error,
                          [&](const Error& e) { return message_has(e, {"WarmupCosineLR", parameter}); });
  };
  rejects(0, 0.05, 0.01, "total_steps");
  rejects(10, -0.1, 0.01, "warmup_fraction");
  rejects(10, 1.5, 0.01, "warmup_fraction");
  rejects(10, std::nan(""), 0.01, "warmup_fraction");
  rejects(10, 0.05, 0.0, "final_fraction");  // would end on a rate of 0, which SGD refuses
  rejects(10, 0.05, 2.0, "final_fraction");
  BOOST_TEST(opt.lr() == 0.1);  // a rejected schedule leaves the optimiser alone
}

// Rates are computed in double: one that decays below float range is held at the smallest
// normal float (the step still runs), and one that would grow past it is refused.
BOOST_AUTO_TEST_CASE(rates_beyond_float_range) {
  Variable p(zeros({1}), true);
  optim::SGD opt({{"p", p}}, {0.1});
  optim::StepLR decay(opt, 1, 1e-10);
  decay.set_epoch(10);  // 0.1 * 1e-100
  BOOST_TEST(opt.lr() == static_cast<double>(std::numeric_limits<float>::min()));
  optim::SGD opt2({{"p", p}}, {0.1});
  optim::WarmupCosineLR cosine(opt2, 4, 0.0, 1e-300);
  cosine.set_steps(3);  // the floor, 1e-301
  BOOST_TEST(opt2.lr() == static_cast<double>(std::numeric_limits<float>::min()));
  optim::SGD opt3({{"p", p}}, {0.1});
  optim::StepLR growth(opt3, 1, 1e20);
  growth.set_epoch(1);
  BOOST_TEST(opt3.lr() == 0.1 * 1e20);
  BOOST_CHECK_EXCEPTION(growth.set_epoch(2), Error,
                        [](const Error& e) { return message_has(e, {"StepLR", "epoch 2", "beyond float range"}); });
  BOOST_TEST(opt3.lr() == 0.1 * 1e20);  // unchanged by the refused rate
}

BOOST_AUTO_TEST_SUITE_END()
