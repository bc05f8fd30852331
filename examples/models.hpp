#pragma once
// The AlexNet-style models of the example, as flat Sequentials whose layer order (and so
// parameter names: "0.weight", "4.weight", ..., "22.bias") is exactly PyTorch's nn.Sequential
// of the same architecture, so checkpoints move between the two unchanged.
//
//   "mini"    (3, 64, 64) inputs, AlexNet's shape at about 1/4 width:
//             conv 3->24 k5 s2 p2, ReLU, LRN(5, 1e-4, 0.75, k=2), maxpool 3/2,
//             conv 24->64 k5 p2 g2, ReLU, LRN, maxpool 3/2,
//             conv 64->96 k3 p1, ReLU, conv 96->96 k3 p1 g2, ReLU, conv 96->64 k3 p1 g2, ReLU,
//             maxpool 3/2, Flatten (576), Dropout, Linear 576->256, ReLU, Dropout,
//             Linear 256->256, ReLU, Linear 256->classes
//   "alexnet" (3, 224, 224) inputs, the two-group AlexNet: conv 96 k11 s4 p2, 256 k5 p2 g2,
//             384 k3 p1, 384 k3 p1 g2, 256 k3 p1 g2, LRN after the first two, three maxpools,
//             Linear 9216->4096->4096->classes with Dropout before the first two.
//   "fmnist"  (1, 28, 28) inputs (Fashion-MNIST), the same shape for small grey images, with
//             2x2 pools that keep the resolution (28 -> 14 -> 7) for conv3-5:
//             conv 1->32 k3 p1, ReLU, LRN(5, 1e-4, 0.75, k=2), maxpool 2/2 (14x14),
//             conv 32->64 k5 p2 g2, ReLU, LRN, maxpool 2/2 (7x7),
//             conv 64->96 k3 p1, ReLU, conv 96->96 k3 p1 g2, ReLU, conv 96->64 k3 p1 g2, ReLU,
//             maxpool 3/2 (3x3), Flatten (576), Dropout, Linear 576->512, ReLU, Dropout,
//             Linear 512->512, ReLU, Linear 512->classes
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/layers/layer.hpp>

namespace xgrad::examples {

// The valid presets, in a stable order: {"mini", "alexnet", "fmnist"}.
const std::vector<std::string>& alexnet_presets();

// Builds the model with He-initialised weights (N(0, 2 / fan_in)) and zero biases, drawn from
// the global generator (see manual_seed), as are the dropout layers' seeds. dropout is the
// drop probability of both Dropout layers.
// Throws xgrad::Error for an unknown preset (listing the valid ones) or classes == 0.
// With batch_norm, a BatchNorm2d follows each of conv3-5, before its ReLU (26 layers, not 23).
std::shared_ptr<Sequential> make_alexnet_model(const std::string& preset, std::size_t classes, double dropout = 0.5,
                                               bool batch_norm = false);

// Input height and width of a preset: 64 for "mini", 224 for "alexnet", 28 for "fmnist".
std::size_t input_side(const std::string& preset);
// Input channels of a preset: 3, or 1 for "fmnist".
std::size_t input_channels(const std::string& preset);

}  // namespace xgrad::examples
