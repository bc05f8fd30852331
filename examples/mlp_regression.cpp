// A small "compose your own model" example: a two-hidden-layer MLP learns
// f(a, b) = sin(2a) * cos(b) from noisy samples with SGD and a mean squared error loss.
//
// usage: mlp_regression [--epochs N] [--seed S] [--threads T]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

struct Data {
  Tensor x;  // (S, 2)
  Tensor y;  // (S, 1)
};

Data make_data(std::size_t samples, Rng& rng, double noise) {
  Data d{empty({samples, 2}), empty({samples, 1})};
  for (std::size_t i = 0; i < samples; ++i) {
    const double a = rng.uniform(-2, 2), b = rng.uniform(-2, 2);
    d.x(i, 0) = static_cast<float>(a);
    d.x(i, 1) = static_cast<float>(b);
    d.y(i, 0) = static_cast<float>(std::sin(2 * a) * std::cos(b) + rng.normal(0, noise));
  }
  return d;
}

Variable mse(const Variable& pred, const Variable& target) {
  Variable diff = sub(pred, target);
  return mean(mul(diff, diff));
}

int parse_int(const char* flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 1 || v > 1000000) {
    std::fprintf(stderr, "mlp_regression: %s expects a positive integer, got '%s'\n", flag, text);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  int epochs = 60, threads = 2, seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: mlp_regression [--epochs N] [--seed S] [--threads T]\n");
      return 0;
    }
    if (i + 1 >= argc || (arg != "--epochs" && arg != "--seed" && arg != "--threads")) {
      std::fprintf(stderr, "mlp_regression: unknown or incomplete option '%s'\nusage: mlp_regression [--epochs N] [--seed S] [--threads T]\n", arg.c_str());
      return 2;
    }
    const int v = parse_int(argv[i], argv[i + 1]);
    ++i;
    if (arg == "--epochs") epochs = v;
    else if (arg == "--seed") seed = v;
    else threads = v;
  }
  set_num_threads(threads);
  manual_seed(static_cast<std::uint64_t>(seed));
  Rng data_rng(static_cast<std::uint64_t>(seed) + 1000);
  const Data train = make_data(4096, data_rng, 0.05);
  const Data test = make_data(1024, data_rng, 0.0);

  Sequential model;
  model.emplace<Linear>(2, 64);
  model.emplace<ReLU>();
  model.emplace<Linear>(64, 64);
  model.emplace<ReLU>();
  model.emplace<Linear>(64, 1);
  std::printf("%s\n", model.describe().c_str());

  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05).momentum(0.9));
  const std::size_t batch = 64, samples = train.x.shape()[0];
  Rng shuffle(static_cast<std::uint64_t>(seed) + 2000);
  std::vector<std::size_t> order(samples);
  for (std::size_t i = 0; i < samples; ++i) order[i] = i;

  auto evaluate = [&] {
    NoGradGuard no_grad;
    return mse(model(Variable(test.x)), Variable(test.y)).value()();
  };
  double variance = 0.0, mean_y = 0.0;
  for (float v : test.y) mean_y += v;
  mean_y /= static_cast<double>(test.y.size());
  for (float v : test.y) variance += (v - mean_y) * (v - mean_y);
  variance /= static_cast<double>(test.y.size());

  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    shuffle.shuffle(order);
    double total = 0.0;
    for (std::size_t b = 0; b < samples; b += batch) {
      Tensor xb = empty({batch, 2}), yb = empty({batch, 1});
      for (std::size_t j = 0; j < batch; ++j) {
        xb(j, 0) = train.x(order[b + j], 0);
        xb(j, 1) = train.x(order[b + j], 1);
        yb(j, 0) = train.y(order[b + j], 0);
      }
      opt.zero_grad();
      Variable loss = mse(model(Variable(xb)), Variable(yb));
      loss.backward();
      opt.step();
      total += loss.value()();
    }
    if (epoch == 1 || epoch % 10 == 0 || epoch == epochs) {
      std::printf("epoch %3d  train loss %.5f  test loss %.5f\n", epoch, total / (samples / batch), evaluate());
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double final_loss = evaluate();
  std::printf("test MSE %.5f vs %.5f for predicting the mean (R^2 = %.3f), %.1f s\n", final_loss, variance,
              1.0 - final_loss / variance, seconds);
  return 0;
}
