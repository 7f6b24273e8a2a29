// A PostgreSQL store's `dsn`, read with libpq's own parser: the loader must
// refuse a malformed string or one carrying a password without echoing it,
// and messages name the database without the password.
#pragma once

#include <optional>
#include <string>

namespace retentiond {

struct ConninfoCheck {
  std::optional<std::string> error;  // libpq's reason it cannot be read
  bool has_password = false;
};
ConninfoCheck check_conninfo(const std::string& conninfo);

// The connection string's settings without any password, for messages.
std::string redacted_conninfo(const std::string& conninfo);

}  // namespace retentiond
