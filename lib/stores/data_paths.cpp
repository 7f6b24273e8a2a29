#include "stores/data_paths.hpp"

#include <fmt/format.h>

#include <cerrno>

namespace retentiond {

std::string data_paths_advice(int error, std::string_view folders) {
  switch (error) {
    case EROFS:
      return fmt::format("under the systemd unit, list {} in ReadWritePaths= of {} (see {})",
                         folders, kDataPathsDropIn, kDataPathsExample);
    case EACCES:
      return fmt::format(
          "the user the sweep runs as needs write access to {}: under the systemd unit, the "
          "user retentiond, e.g. through a group that owns the folder, listed in "
          "SupplementaryGroups= of {} (see {})",
          folders, kDataPathsDropIn, kDataPathsExample);
    default:
      return "";
  }
}

}  // namespace retentiond
