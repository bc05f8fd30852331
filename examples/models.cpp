#include "examples/models.hpp"

#include <xgrad/core/error.hpp>
#include <xgrad/core/rng.hpp>
#include <xgrad/layers/batch_norm.hpp>
#include <xgrad/layers/conv2d.hpp>
#include <xgrad/layers/dropout.hpp>
#include <xgrad/layers/flatten.hpp>
#include <xgrad/layers/linear.hpp>
#include <xgrad/layers/local_response_norm.hpp>
#include <xgrad/layers/max_pool2d.hpp>
#include <xgrad/layers/relu.hpp>

namespace xgrad::examples {

namespace {

// Widths and geometry shared by the presets.
struct Geometry {
  std::size_t channels, side;  // of the input images
  std::size_t c1, k1, s1, p1;  // first conv: channels, kernel, stride, padding
  std::size_t c2, c3, c4, c5;  // channels of conv 2..5
  std::size_t hidden;          // width of the two hidden linear layers
  std::size_t final_side;      // spatial size after the last max pool
  std::size_t pool_kernel = 3;  // of the first two max pools (stride 2); the last one is 3/2
};

Geometry geometry(const std::string& preset) {
  if (preset == "mini") return {3, 64, 24, 5, 2, 2, 64, 96, 96, 64, 256, 3};
  if (preset == "alexnet") return {3, 224, 96, 11, 4, 2, 256, 384, 384, 256, 4096, 6};
  if (preset == "fmnist") {
    Geometry g{1, 28, 32, 3, 1, 1, 64, 96, 96, 64, 512, 3};
    g.pool_kernel = 2;  // 28 -> 14 -> 7 keeps conv3-5 at 7x7 (3/2 pools: 13, 6, and 2x2 at the end)
    return g;
  }
  std::string valid;
  for (const auto& p : alexnet_presets()) valid += (valid.empty() ? "" : ", ") + p;
  throw Error(cat("unknown model preset '", preset, "' (valid presets: ", valid, ")"));
}

}  // namespace

const std::vector<std::string>& alexnet_presets() {
  static const std::vector<std::string> presets{"mini", "alexnet", "fmnist"};
  return presets;
}

std::size_t input_side(const std::string& preset) { return geometry(preset).side; }
std::size_t input_channels(const std::string& preset) { return geometry(preset).channels; }

std::shared_ptr<Sequential> make_alexnet_model(const std::string& preset, std::size_t classes, double dropout,
                                               bool batch_norm) {
  const Geometry g = geometry(preset);
  XGRAD_CHECK(classes > 0, "make_alexnet_model: classes must be > 0");
  auto model = std::make_shared<Sequential>();
  Sequential& m = *model;
  const LrnOptions lrn = LrnOptions(5).alpha(1e-4).beta(0.75).k(2.0);
  const MaxPool2dOptions pool = MaxPool2dOptions(g.pool_kernel).stride(2);
  const MaxPool2dOptions last_pool = MaxPool2dOptions(3).stride(2);
  // Index comments are the parameter-name prefixes ("0.weight").
  m.emplace<Conv2d>(Conv2dOptions(g.channels, g.c1, g.k1).stride(g.s1).padding(g.p1));  // 0
  m.emplace<ReLU>();                                            // 1
  m.emplace<LocalResponseNorm>(lrn);                            // 2
  m.emplace<MaxPool2d>(pool);                                   // 3
  m.emplace<Conv2d>(Conv2dOptions(g.c1, g.c2, 5).padding(2).groups(2));  // 4
  m.emplace<ReLU>();                                            // 5
  m.emplace<LocalResponseNorm>(lrn);                            // 6
  m.emplace<MaxPool2d>(pool);                                   // 7
  // With batch_norm a BatchNorm2d follows each of conv3-5 (before its ReLU), and every later
  // index grows by one per BatchNorm2d.
  auto conv_relu = [&](const Conv2dOptions& conv) {
    m.emplace<Conv2d>(conv);
    if (batch_norm) m.emplace<BatchNorm2d>(conv.out_channels());
    m.emplace<ReLU>();
  };
  conv_relu(Conv2dOptions(g.c2, g.c3, 3).padding(1));            // 8, 9
  conv_relu(Conv2dOptions(g.c3, g.c4, 3).padding(1).groups(2));  // 10, 11
  conv_relu(Conv2dOptions(g.c4, g.c5, 3).padding(1).groups(2));  // 12, 13
  m.emplace<MaxPool2d>(last_pool);                              // 14
  m.emplace<Flatten>();                                         // 15
  m.emplace<Dropout>(dropout, global_rng().next_u64());         // 16
  m.emplace<Linear>(g.c5 * g.final_side * g.final_side, g.hidden);  // 17
  m.emplace<ReLU>();                                            // 18
  m.emplace<Dropout>(dropout, global_rng().next_u64());         // 19
  m.emplace<Linear>(g.hidden, g.hidden);                        // 20
  m.emplace<ReLU>();                                            // 21
  m.emplace<Linear>(g.hidden, classes);                         // 22

  // He initialisation (weights ~ N(0, 2 / fan_in), biases 0) instead of the layers' PyTorch
  // default U(-1/sqrt(fan_in), 1/sqrt(fan_in)): the default shrinks the signal's variance
  // about 6x per ReLU layer, so through eight layers the logits start near zero and plain
  // SGD needs hundreds of steps to leave the plateau at loss log(classes).
  // BatchNorm2d's weights (1-D) keep their 1.
  for (auto& p : model->parameters()) {
    Variable v = p.variable;
    const bool is_weight = p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0;
    if (is_weight && v.shape().size() >= 2) kaiming_normal(v.mutable_value(), global_rng());
    else if (!is_weight) v.mutable_value().fill(0.0f);
  }
  return model;
}

}  // namespace xgrad::examples
