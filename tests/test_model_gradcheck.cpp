// A small model made of every layer type (grouped Conv2d, ReLU, LocalResponseNorm,
// MaxPool2d, Flatten, Dropout, Linear) and the cross-entropy loss, checked end to end
// through the tape: every parameter and the input.
#include <boost/test/unit_test.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

struct SmallModel {
  Sequential net;
  Dropout* dropout = nullptr;
  explicit SmallModel(Rng& rng) {
    net.add(std::make_shared<Conv2d>(Conv2dOptions(4, 6, 3).padding(1).groups(2), rng));  // grouped
    net.emplace<ReLU>();
    net.emplace<LocalResponseNorm>(LrnOptions(3).alpha(0.2).beta(0.75).k(1.0));  // alpha large enough to matter
    net.emplace<MaxPool2d>(MaxPool2dOptions(3).stride(2));                       // overlapping windows
    net.add(std::make_shared<Conv2d>(Conv2dOptions(6, 4, 3).padding(1), rng));
    net.emplace<ReLU>();
    net.emplace<Flatten>();
    dropout = &net.emplace<Dropout>(0.25, 3);
    net.add(std::make_shared<Linear>(64, 5, true, rng));
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(model_gradcheck)

BOOST_AUTO_TEST_CASE(every_layer_type_through_the_tape) {
  Rng rng(21);
  SmallModel model(rng);
  Tensor xv = empty({2, 4, 9, 9});
  rng.fill_normal(xv, 0.0, 1.0);
  Variable x(std::move(xv), true, "input");
  const std::vector<std::int64_t> labels{1, 4};
  CrossEntropyLoss loss;
  std::vector<Variable> wrt{x};
  for (auto& p : model.net.parameters()) {
    p.variable.set_name(p.name);
    wrt.push_back(p.variable);
  }
  // The dropout mask is re-seeded for each evaluation so that every call sees the same one.
  auto f = [&] {
    model.dropout->set_seed(3);
    return loss(model.net(x), labels);
  };
  GradcheckOptions options;
  options.eps = 1e-3;         // small steps keep ReLU and max-pool choices unchanged
  options.max_elements = 60;  // per tensor, seeded sample
  const auto r = gradcheck(f, wrt, options);
  BOOST_TEST(r.ok, r.summary());
  BOOST_TEST(r.checked == 255u);  // 60 of each large tensor, all of the small ones
}

BOOST_AUTO_TEST_SUITE_END()
