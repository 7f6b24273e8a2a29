// The data-paths drop-in: where an administrator names, for the systemd
// unit, the folders the stores are written in. The unit runs with
// ProtectSystem=strict, so a folder the drop-in does not list is read-only
// to the service (EROFS), and one its user may not write is EACCES; a store
// that fails to write says which drop-in to edit.
#pragma once

#include <string>
#include <string_view>

namespace retentiond {

inline constexpr std::string_view kDataPathsDropIn =
    "/etc/systemd/system/retentiond.service.d/data-paths.conf";
inline constexpr std::string_view kDataPathsExample =
    "/usr/share/doc/retentiond/examples/data-paths.conf.example";

// What to do when writing in `folders` (one folder, or "A and B") failed
// with errno `error`, to append to the message after the error's own text;
// empty for errors a drop-in cannot fix.
std::string data_paths_advice(int error, std::string_view folders);

}  // namespace retentiond
