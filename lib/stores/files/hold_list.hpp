// `hold: { list: PATH }`: a text file of relative paths or globs, one a line,
// `#` starting a comment line. A listed path holds the file of that path, and
// a listed folder everything below it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "util/glob.hpp"

namespace retentiond::files {

class HoldList {
 public:
  // Reads the list. A list that cannot be read, or a line that is not a
  // relative path or glob (an absolute path, a '..' step), throws
  // StoreError (unavailable) naming the list and the line: a list that
  // cannot be understood never means "no holds".
  static HoldList read(const std::filesystem::path& file);

  // Whether `rel` (a path relative to the root) or one of its folders is listed.
  bool holds(std::string_view rel) const;

  std::size_t size() const { return literal_.size() + globs_.size(); }

 private:
  std::unordered_set<std::string> literal_;
  std::vector<Glob> globs_;
};

}  // namespace retentiond::files
