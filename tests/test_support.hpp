// Helpers shared by the tests: a temporary folder that cleans up after itself.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "time/calendar.hpp"

namespace retentiond::test {

// A calendar day and a UTC instant, written as a test reads them.
inline Day day(int y, unsigned m, unsigned d) { return Day{date::year{y} / m / d}; }

inline std::chrono::sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0,
                                    int s = 0) {
  return std::chrono::sys_seconds{day(y, mo, d)} + std::chrono::hours{h} +
         std::chrono::minutes{mi} + std::chrono::seconds{s};
}

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it when
// the TempDir goes out of scope. Not copyable: one owner deletes it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "retentiond-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    // Give back permissions a test may have taken away, so removal succeeds.
    for (auto it = std::filesystem::recursive_directory_iterator(
             path_, std::filesystem::directory_options::skip_permission_denied, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0700);
    }
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  // Writes `text` to `name` (relative to the folder; parent folders are
  // created) with exactly `mode`, and returns the file's full path.
  std::filesystem::path write(std::string_view name, std::string_view text,
                              mode_t mode = 0644) const {
    std::filesystem::path file = path_ / name;
    std::filesystem::create_directories(file.parent_path());
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      if (!out) throw std::runtime_error("cannot write " + file.string());
    }
    if (::chmod(file.c_str(), mode) != 0) {
      throw std::system_error(errno, std::generic_category(), "chmod " + file.string());
    }
    return file;
  }

 private:
  std::filesystem::path path_;
};

// The bytes of a file, or throws.
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace retentiond::test
