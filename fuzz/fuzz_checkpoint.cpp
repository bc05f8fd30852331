// libFuzzer target: load_checkpoint of a directory the input describes, into a small fixed
// model (parameters 0.weight (2, 3), 0.bias (2), 2.weight (1, 2), 2.bias (1)).
// The input is the contents of files separated by the line kSeparator: the first four pieces
// become the four parameter files (fewer pieces: the rest are missing), any further pieces
// extra files "extra<i>.npy".
// Properties: a load or an xgrad::Error; after an error no parameter has changed; after a load
// every parameter has its shape.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "fuzz/fuzz_util.hpp"

namespace {

constexpr std::string_view kSeparator = "\n==> next file <==\n";
const char* const kFiles[] = {"0.weight.npy", "0.bias.npy", "2.weight.npy", "2.bias.npy"};

struct Fixture {
  std::shared_ptr<xgrad::Sequential> model = std::make_shared<xgrad::Sequential>();
  std::vector<xgrad::Tensor> initial;
  Fixture() {
    xgrad::Rng rng(1);
    model->add(std::make_shared<xgrad::Linear>(3, 2, true, rng));
    model->emplace<xgrad::ReLU>();
    model->add(std::make_shared<xgrad::Linear>(2, 1, true, rng));
    for (auto& p : model->parameters()) initial.push_back(p.variable.value());
  }
  bool unchanged() {
    std::size_t i = 0;
    for (auto& p : model->parameters()) {
      const xgrad::Tensor& v = p.variable.value();
      if (v.shape() != initial[i].shape() || std::memcmp(v.data(), initial[i].data(), v.size() * sizeof(float)) != 0) {
        return false;
      }
      ++i;
    }
    return true;
  }
  void reset() {
    std::size_t i = 0;
    for (auto& p : model->parameters()) p.variable.mutable_value() = initial[i++];
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  const auto dir = xgrad::fuzz::scratch_dir() / "ckpt";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  for (std::size_t piece = 0; start <= input.size(); ++piece) {
    std::size_t end = input.find(kSeparator, start);
    if (end == std::string_view::npos) end = input.size();
    const std::string name = piece < 4 ? kFiles[piece] : "extra" + std::to_string(piece) + ".npy";
    xgrad::fuzz::write_file(dir / name, input.data() + start, end - start);
    start = end + kSeparator.size();
  }

  if (xgrad::fuzz::succeeds([&] { xgrad::load_checkpoint(*fixture.model, dir.string()); })) {
    std::size_t i = 0;
    for (auto& p : fixture.model->parameters()) {
      if (p.variable.value().shape() != fixture.initial[i++].shape()) xgrad::fuzz::violated("a load changed a shape");
    }
    fixture.reset();
  } else if (!fixture.unchanged()) {
    xgrad::fuzz::violated("a failed load changed a parameter");
  }
  return 0;
}
