// SQL's quoted identifier, the same in SQLite's and PostgreSQL's dialects.
#pragma once

#include <string>
#include <string_view>

namespace retentiond {

// "name" with embedded quotes doubled. Identifiers are checked plain at load
// time; quoting keeps keywords such as "order" usable as column names.
inline std::string quote_identifier(std::string_view identifier) {
  std::string out = "\"";
  for (char c : identifier) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace retentiond
