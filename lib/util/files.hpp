// Small filesystem helpers with the care a state directory needs.
#pragma once

#include <filesystem>
#include <string_view>

#include "util/error.hpp"

namespace retentiond {

// Creates `dir` (and parents) as 0700 if missing; fails with
// ExitCode::cant_create, naming the folder, when it cannot be created or written.
Result<void> ensure_private_directory(const std::filesystem::path& dir);

// Writes `content` to a temporary file in the same folder, fsyncs it and
// renames it over `path`: readers see the old file or the new one, never half.
Result<void> write_file_atomically(const std::filesystem::path& path, std::string_view content,
                                   unsigned mode = 0644);

// This installation's identity, kept in `state_dir`/installation-id (created
// on first use, 32 hex digits): what tells apart the retentiond daemons of
// several hosts that share a database.
Result<std::string> installation_id(const std::filesystem::path& state_dir);

}  // namespace retentiond
