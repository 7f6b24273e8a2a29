#include "util/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace retentiond {

namespace fs = std::filesystem;

Result<void> ensure_private_directory(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec)
      return fail(ExitCode::cant_create, fmt::format("cannot create the state directory {}: {}",
                                                     dir.string(), ec.message()));
    fs::permissions(dir, fs::perms::owner_all, ec);
  }
  if (!fs::is_directory(dir, ec)) {
    return fail(ExitCode::cant_create,
                fmt::format("the state directory {} is not a directory", dir.string()));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return fail(ExitCode::cant_create, fmt::format("the state directory {} is not writable: {}",
                                                   dir.string(), std::strerror(errno)));
  }
  return {};
}

Result<void> write_file_atomically(const fs::path& path, std::string_view content, unsigned mode) {
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return fail(ExitCode::cant_create,
                fmt::format("cannot write {}: {}", tmp.string(), std::strerror(errno)));
  std::size_t done = 0;
  bool ok = true;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved = errno;
    ::unlink(tmp.c_str());
    return fail(ExitCode::cant_create,
                fmt::format("cannot write {}: {}", path.string(), std::strerror(saved)));
  }
  return {};
}

Result<std::string> installation_id(const fs::path& state_dir) {
  fs::path file = state_dir / "installation-id";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    std::ifstream in(file);
    std::string id;
    if (in >> id && id.size() == 32 &&
        id.find_first_not_of("0123456789abcdef") == std::string::npos) {
      return id;
    }
    return fail(ExitCode::cant_create,
                fmt::format("{} is damaged (expected 32 hex digits); remove it and a new one is "
                            "made, but the outbox rows of this installation's interrupted sweeps "
                            "in shared databases would then need to be logged by hand",
                            file.string()));
  }
  std::random_device random;
  std::string id;
  for (int i = 0; i < 4; ++i) id += fmt::format("{:08x}", random());
  if (auto written = write_file_atomically(file, id + "\n", 0600); !written)
    return std::unexpected(written.error());
  return id;
}

}  // namespace retentiond
