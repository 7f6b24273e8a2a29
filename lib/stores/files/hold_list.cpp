#include "stores/files/hold_list.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "stores/files/tree.hpp"
#include "stores/store_error.hpp"

namespace retentiond::files {
namespace {

constexpr std::size_t kMaxListBytes = 64 * 1024 * 1024;

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

[[noreturn]] void unusable(const std::filesystem::path& file, std::string why) {
  throw StoreError(StoreError::Kind::unavailable,
                   fmt::format("hold list {} {}; no file of the rule is touched until it can be "
                               "read (a list that cannot be read never means \"no holds\")",
                               file.string(), why));
}

}  // namespace

HoldList HoldList::read(const std::filesystem::path& file) {
  // O_NOATIME where the kernel allows it: reading the list is not a use of it.
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME));
  if (!fd && errno == EPERM) fd = Fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) unusable(file, fmt::format("cannot be read: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) unusable(file, "is not a regular file");
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) unusable(file, fmt::format("cannot be read: {}", std::strerror(errno)));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxListBytes) unusable(file, "is larger than 64 MiB");
  }
  HoldList list;
  std::size_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string_view line = trimmed(std::string_view(text).substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    while (line.starts_with("./")) line.remove_prefix(2);
    while (line.size() > 1 && line.back() == '/') line.remove_suffix(1);
    auto glob = Glob::compile(line);
    if (!glob) unusable(file, fmt::format("line {}: {}", line_no, glob.error()));
    if (glob->is_literal()) {
      // Unescaped, as the names on disk are.
      std::string path;
      for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        path += line[i];
      }
      list.literal_.insert(std::move(path));
    } else {
      list.globs_.push_back(std::move(*glob));
    }
  }
  return list;
}

bool HoldList::holds(std::string_view rel) const {
  // The path itself, then each of its folders.
  for (std::size_t end = rel.size();;) {
    std::string_view prefix = rel.substr(0, end);
    if (!literal_.empty() && literal_.count(std::string(prefix))) return true;
    for (const auto& g : globs_) {
      if (g.matches(prefix)) return true;
    }
    auto slash = prefix.rfind('/');
    if (slash == std::string_view::npos) return false;
    end = slash;
  }
}

}  // namespace retentiond::files
