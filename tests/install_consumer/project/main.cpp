// A program outside the xgrad tree: builds a tiny model from the installed package, takes
// a few SGD steps and checks that the loss went down.
#include <cstdio>

#include <xgrad/xgrad.hpp>
#ifdef XGRAD_WITH_MPI
#include <xgrad/distributed/distributed.hpp>
#endif

int main() {
  using namespace xgrad;
  manual_seed(1);
  Sequential model;
  model.emplace<Linear>(3, 8);
  model.emplace<ReLU>();
  model.emplace<Linear>(8, 1);
  optim::SGD opt(model.parameters(), {0.05});
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
  std::printf("consumer ok: loss %g -> %g\n", first, last);
  return 0;
}
