// Headless chromium (Debian's /usr/bin/chromium), offline, for the tests
// that render a page: the DOM it builds and a screenshot.
#pragma once

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace retentiond::test::browser {

inline constexpr std::string_view kChromium = "/usr/bin/chromium";

struct ProcessResult {
  int status = -1;
  std::string out;
};

// Runs a shell command line, capturing its standard output.
inline ProcessResult run(const std::string& command) {
  ProcessResult r;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string shell_quoted(const std::filesystem::path& p) {
  // Appended, not "'" + p.string() + "'": GCC 12 at -O3 sees a false overlap
  // in that concatenation (-Wrestrict, a libstdc++ inlining artefact).
  std::string quoted = "'";
  quoted += p.string();
  quoted += '\'';
  return quoted;
}

// Headless chromium, offline, with a throw-away profile.
inline std::string chromium(const std::filesystem::path& profile) {
  return "timeout 120 " + std::string(kChromium) +
         " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
         " --disable-component-update --disable-sync --hide-scrollbars --user-data-dir=" +
         shell_quoted(profile);
}

}  // namespace retentiond::test::browser
