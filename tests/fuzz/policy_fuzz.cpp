// libFuzzer target: the policy loader must turn any bytes into a policy or a
// FILE:LINE:COLUMN error, never a crash, a leak or undefined behaviour.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "policy/policy.hpp"

namespace {

// One file per process, rewritten for each input (the loader reads files).
const std::filesystem::path& scratch() {
  static const std::filesystem::path path = [] {
    auto dir =
        std::filesystem::temp_directory_path() / ("retentiond-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    return dir / "policy.yaml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(scratch(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto policy = retentiond::load_policy(scratch());
  if (!policy) {
    const auto& message = policy.error().message;
    // Every invalid policy is reported with the file's name first.
    if (message.rfind(scratch().string(), 0) != 0) std::abort();
    if (policy.error().code != retentiond::ExitCode::config &&
        policy.error().code != retentiond::ExitCode::no_input) {
      std::abort();
    }
  }
  return 0;
}
