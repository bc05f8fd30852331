// A program outside the xgrad tree: builds a tiny model with a custom module from the installed
// package, takes a few SGD steps and checks that the loss went down and that the parameters
// are named by their paths.
#include <cstdio>
#include <memory>
#include <string>

#include <xgrad/xgrad.hpp>
#ifdef XGRAD_WITH_MPI
#include <xgrad/distributed/distributed.hpp>
#endif

// A custom module, as a user writes one: it registers its layers, and forward composes them.
struct Mlp : xgrad::Layer {
  Mlp() {
    fc1 = register_module("fc1", std::make_shared<xgrad::Linear>(3, 8));
    act = register_module("act", std::make_shared<xgrad::ReLU>());
    fc2 = register_module("fc2", std::make_shared<xgrad::Linear>(8, 1));
  }
  xgrad::Variable forward(const xgrad::Variable& x) override { return fc2->forward(act->forward(fc1->forward(x))); }
  std::shared_ptr<xgrad::Linear> fc1, fc2;
  std::shared_ptr<xgrad::ReLU> act;
};

int main() {
  using namespace xgrad;
  manual_seed(1);
  Sequential model;
  model.add(std::make_shared<Mlp>());
  std::string names;
  for (const auto& p : model.parameters()) names += (names.empty() ? "" : " ") + p.name;
  if (names != "0.fc1.weight 0.fc1.bias 0.fc2.weight 0.fc2.bias") {
    std::printf("consumer failed: parameter names '%s'\n", names.c_str());
    return 1;
  }
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05));
  Tensor x = {{1.0f, 0.0f, 0.0f}, {0.0f, 1.0f, 0.0f}, {0.0f, 0.0f, 1.0f}, {1.0f, 1.0f, 1.0f}};
  Tensor y = {1.0f, 2.0f, 3.0f, 6.0f};
  y.reshape({4, 1});
  float first = 0, last = 0;
  for (int step = 0; step < 50; ++step) {
    opt.zero_grad();
    Variable diff = sub(model(Variable(x)), Variable(y));
    Variable loss = mean(mul(diff, diff));
    loss.backward();
    opt.step();
    if (step == 0) first = loss.value()();
    last = loss.value()();
  }
  if (!(last < 0.5f * first)) {
    std::printf("consumer failed: loss %g -> %g\n", first, last);
    return 1;
  }
#ifdef XGRAD_WITH_MPI
  // Links against the installed MPI part (without starting MPI: no mpirun here).
  if (distributed::initialized()) {
    std::printf("consumer failed: MPI initialised without distributed::init\n");
    return 1;
  }
  std::printf("consumer: xgrad::xgrad_distributed linked\n");
#endif
  // The sampler is always installed.
  if (distributed::DistributedSampler(10, 1, 2, 3).indices(0).size() != 5) {
    std::printf("consumer failed: sampler shard size\n");
    return 1;
  }
  // The IDX reader (and with it zlib, a dependency of the installed package) links.
  try {
    data::read_idx("/nonexistent/train-labels-idx1-ubyte.gz");
    std::printf("consumer failed: read_idx of a missing file did not throw\n");
    return 1;
  } catch (const Error&) {
  }
  std::printf("consumer ok: loss %g -> %g\n", first, last);
  return 0;
}
