// A program for the failure tests of distributed/ (run under mpirun -np 2 by ctest):
//   distributed_failure throw    rank 1 throws while rank 0 waits in the gradient allreduce
//   distributed_failure shapes   the ranks build different models
// Both must end the whole job promptly with a non-zero exit code and "rank R: error: ..."
// on stderr; neither may hang.
#include <cstdio>
#include <string>

#include <xgrad/distributed/distributed.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace dist = xgrad::distributed;

int main(int argc, char** argv) {
  dist::Session mpi(argc, argv);
  const std::string mode = argc > 1 ? argv[1] : "";
  return dist::run_or_abort([&] {
    const int rank = dist::rank();
    Sequential model;
    model.emplace<Linear>(4, 8);
    model.emplace<ReLU>();
    model.emplace<Linear>(8, mode == "shapes" && rank == 1 ? 3 : 2);
    dist::broadcast_parameters(model.parameters());
    dist::GradientAverager averager(model.parameters());
    if (mode == "throw") {
      if (rank == 1) throw Error("distributed_failure: planted failure on rank 1");
      for (;;) averager.average();  // rank 0 would wait here forever without the abort
    }
    if (mode == "shapes") {
      std::printf("distributed_failure: rank %d got past the shape check\n", rank);
      return 0;
    }
    std::fprintf(stderr, "usage: distributed_failure throw|shapes\n");
    return 2;
  });
}
