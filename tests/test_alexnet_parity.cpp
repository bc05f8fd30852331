// The "mini" AlexNet preset against PyTorch: the same float32 weights (loaded through
// load_checkpoint from tests/fixtures/alexnet_mini, written by
// tests/reference/make_alexnet_fixtures.py) and input must give PyTorch's logits, loss and
// every parameter gradient.
//
// Tolerance. The reference is computed in float64; we compute in float32. Each tensor is
// compared as  max|ours - expected| <= kRel * max|expected| + kAbs,  scaled by the tensor's
// magnitude because elementwise relative error means nothing for entries near zero (e.g.
// gradients of weights behind a mostly-off ReLU). float32 rounds each operation by up to
// 6e-8; the longest accumulations are dot products of 600 to 2,400 terms (convolutions,
// linear layers) along a chain of ~20 layers, and the measured worst difference is about
// 1e-6 of the tensor's scale. kRel = 1e-5 keeps a 10x margin over that while any real bug (a
// wrong LRN window, a missing 1/n, a transposed weight, a gradient routed to the wrong pooling
// input) is off by 1e-3 or more.
#include <cmath>
#include <string>

#include <boost/test/unit_test.hpp>

#include "examples/models.hpp"
#include "tests/test_util.hpp"
#include <xgrad/layers/cross_entropy_loss.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
using xgrad::test::random_tensor;

namespace {

constexpr double kRel = 1e-5;
constexpr double kAbs = 1e-7;

const std::string kDir = std::string(XGRAD_FIXTURES_DIR) + "/alexnet_mini";

template <class A, class B>
void check_close(const std::string& what, const A& ours, const B& expected) {
  BOOST_REQUIRE_MESSAGE(Shape(ours.shape().begin(), ours.shape().end()) ==
                            Shape(expected.shape().begin(), expected.shape().end()),
                        what << ": shape " << shape_str(ours.shape()) << " vs " << shape_str(expected.shape()));
  double scale = 0.0, worst = 0.0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) scale = std::max(scale, std::abs(double(expected.data()[i])));
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double d = std::abs(double(ours.data()[i]) - double(expected.data()[i]));
    if (!(d <= worst)) {  // also catches NaN
      worst = d;
      worst_at = i;
    }
  }
  const double bound = kRel * scale + kAbs;
  BOOST_CHECK_MESSAGE(worst <= bound, what << ": worst |difference| " << worst << " at flat index " << worst_at
                                           << " exceeds " << bound << " (max |expected| " << scale << ")");
  BOOST_TEST_MESSAGE(what << ": worst difference " << worst / std::max(scale, 1e-30) << " of max |expected|");
}

}  // namespace

BOOST_AUTO_TEST_CASE(mini_matches_pytorch) {
  set_num_threads(2);
  auto model = examples::make_alexnet_model("mini", 10, /*dropout*/ 0.0);
  load_checkpoint(*model, kDir);  // also proves the parameter names equal PyTorch's state_dict keys

  const Tensor input = load_npy<float>(kDir + "/expected/input.npy");
  const auto labels_array = load_npy<std::int64_t>(kDir + "/expected/labels.npy");
  const std::vector<std::int64_t> labels(labels_array.begin(), labels_array.end());

  Variable logits = (*model)(Variable(input));
  Variable loss = CrossEntropyLoss()(logits, labels);
  loss.backward();

  check_close("logits", logits.value(), load_npy<double>(kDir + "/expected/logits.npy"));
  const double expected_loss = load_npy<double>(kDir + "/expected/loss.npy")();
  BOOST_TEST(std::abs(loss.value()() - expected_loss) <= 1e-5 * std::abs(expected_loss));
  std::size_t checked = 0;
  for (const auto& p : model->parameters()) {
    BOOST_REQUIRE_MESSAGE(p.variable.has_grad(), p.name << " received no gradient");
    check_close("grad " + p.name, p.variable.grad(), load_npy<float>(kDir + "/expected/grad." + p.name + ".npy"));
    ++checked;
  }
  BOOST_TEST(checked == 16u);
}

BOOST_AUTO_TEST_CASE(layer_order_and_names_match_pytorch) {
  auto model = examples::make_alexnet_model("mini", 10);
  BOOST_TEST(model->size() == 23u);
  std::vector<std::string> names;
  for (const auto& p : model->parameters()) names.push_back(p.name);
  const std::vector<std::string> expected{"0.weight",  "0.bias",  "4.weight",  "4.bias",  "8.weight",  "8.bias",
                                          "10.weight", "10.bias", "12.weight", "12.bias", "17.weight", "17.bias",
                                          "20.weight", "20.bias", "22.weight", "22.bias"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  BOOST_TEST(examples::input_side("mini") == 64u);
  BOOST_TEST(examples::input_side("alexnet") == 224u);
}

BOOST_AUTO_TEST_CASE(alexnet_preset_has_pytorchs_parameter_count) {
  auto model = examples::make_alexnet_model("alexnet", 1000);
  std::size_t count = 0;
  for (const auto& p : model->parameters()) count += p.variable.size();
  BOOST_TEST(count == 60965224u);  // sum(p.numel()) of the same nn.Sequential in PyTorch
  // A forward pass of one image reaches 1000 logits (checks every layer's geometry).
  NoGradGuard no_grad;
  model->eval();
  const Variable y = (*model)(Variable(zeros<float>({1, 3, 224, 224})));
  BOOST_TEST((y.shape() == Shape{1, 1000}));
}

BOOST_AUTO_TEST_CASE(fmnist_preset_takes_grey_28x28_images) {
  auto model = examples::make_alexnet_model("fmnist", 10);
  BOOST_TEST(model->size() == 23u);  // the same layer list, so the same parameter names
  std::size_t count = 0;
  for (const auto& p : model->parameters()) count += p.variable.size();
  BOOST_TEST(count == 713866u);  // counted by hand from the layer list in models.hpp
  BOOST_TEST(examples::input_side("fmnist") == 28u);
  BOOST_TEST(examples::input_channels("fmnist") == 1u);
  NoGradGuard no_grad;
  model->eval();
  const Variable y = (*model)(Variable(zeros<float>({2, 1, 28, 28})));
  BOOST_TEST((y.shape() == Shape{2, 10}));
}

BOOST_AUTO_TEST_CASE(batch_norm_follows_conv3_to_conv5) {
  auto model = examples::make_alexnet_model("fmnist", 10, 0.0, /*batch_norm*/ true);
  BOOST_TEST(model->size() == 26u);
  std::size_t count = 0;
  for (const auto& p : model->parameters()) count += p.variable.size();
  BOOST_TEST(count == 713866u + 2u * (96u + 96u + 64u));  // a weight and a bias per channel
  std::vector<std::string> buffers;
  for (const auto& b : model->buffers()) buffers.push_back(b.name);
  const std::vector<std::string> expected{"9.running_mean",  "9.running_var",  "12.running_mean",
                                          "12.running_var", "15.running_mean", "15.running_var"};
  BOOST_TEST(buffers == expected, boost::test_tools::per_element());
  // He initialisation leaves BatchNorm2d's weights at 1
  for (const auto& p : model->parameters())
    if (p.name == "9.weight")
      for (float v : p.variable.value()) BOOST_TEST(v == 1.0f);
  const Variable y = (*model)(Variable(random_tensor({4, 1, 28, 28}, 3)));
  BOOST_TEST((y.shape() == Shape{4, 10}));
}

BOOST_AUTO_TEST_CASE(unknown_preset_lists_the_valid_ones) {
  try {
    examples::make_alexnet_model("vgg", 10);
    BOOST_FAIL("expected xgrad::Error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("'vgg'") != std::string::npos);
    BOOST_TEST(msg.find("mini, alexnet") != std::string::npos);
  }
  BOOST_CHECK_THROW(examples::input_side("huge"), Error);
}
