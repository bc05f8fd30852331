#pragma once
// Checkpoints: a directory of float32 .npy files, one per parameter and one per buffer, named
// by its dotted path ("0.weight.npy", "17.bias.npy", "bn.running_mean.npy") and stored in PyTorch's layouts (conv weight
// OIHW, linear weight [out, in]), so a PyTorch state_dict saved key by key with numpy loads
// here and the other way round.
//
// Saving is atomic with respect to the previous checkpoint: every file is written and fsynced
// in a temporary sibling directory "<dir>.tmp-<pid>", which then replaces <dir> in one step
// (an atomic exchange where the filesystem supports it, else rename-aside / rename-into-place /
// remove). An interrupted save never leaves <dir> holding a partial checkpoint.
//
// Loading validates the whole directory before changing any parameter: the directory must
// exist and be readable, every parameter must have its file with dtype '<f4' and the
// parameter's shape, and there must be no other .npy files. Each failure throws xgrad::Error
// naming the directory, the file and what is wrong.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/layers/layer.hpp>

namespace xgrad {

// requires: the model's parameter and buffer names are unique and usable as file names.
// ensures: on success <dir> holds exactly the model's parameters and buffers; on failure (an exception)
//          <dir> is unchanged and the temporary directory has been removed.
void save_checkpoint(Layer& model, const std::string& dir);

// requires: <dir> was written by save_checkpoint (or equivalently by numpy) for a model with
//           the same parameter names and shapes.
// ensures: on success every parameter's value and every buffer is replaced bit-exactly; on
//          failure none has changed.
void load_checkpoint(Layer& model, const std::string& dir);

// save_checkpoint with a hook called after each parameter file is written to the temporary
// directory, with the file's name and the count written so far. A hook that throws simulates
// an interrupted save (tests use this); the exception propagates after cleanup.
using CheckpointFileHook = std::function<void(const std::string& file, std::size_t files_written)>;
void save_checkpoint(Layer& model, const std::string& dir, const CheckpointFileHook& after_each_file);

namespace detail {
// One file of a directory written by write_directory: its name inside the directory (one level
// of subdirectory allowed, "model/0.weight.npy") and how to write it to a path.
struct DirectoryFile {
  std::string name;
  std::function<void(const std::string& path)> write;
};
// What save_checkpoint does with its files, for any files: writes each into a temporary
// sibling "<dir>.tmp-<pid>", fsyncs every file and directory, then puts it in place of <dir> in
// one step. `who` names the caller in errors.
void write_directory(const std::string& dir, const char* who, const std::vector<DirectoryFile>& files,
                     const CheckpointFileHook& after_each_file = nullptr);
// The files of a model's checkpoint (one .npy per parameter and buffer), named under `prefix`
// ("" or "model/"); `who` names the caller in errors about names.
std::vector<DirectoryFile> checkpoint_files(Layer& model, const char* who, const std::string& prefix = "");
// Refuses (xgrad::Error "<who>: <what> name '<name>' cannot be used as a file name: <why>") a
// name that cannot become the file `file` it is stored in: empty, "." or "..", holding a '/'
// or a NUL byte, or making `file` longer than NAME_MAX (255) bytes.
void check_file_name(const char* who, const char* what, const std::string& name, const std::string& file);
// Flushes a directory's entries to stable storage (after a rename or a removal inside it).
void fsync_directory(const std::string& dir);
}  // namespace detail

}  // namespace xgrad
