// What else a change to a rule's table would change: rows of other tables
// through ON DELETE/UPDATE CASCADE (or SET NULL/DEFAULT) foreign keys, and
// triggers that fire on the change. A sweep refuses such a rule rather than
// silently changing data that no rule names. It also refuses to archive by a
// key that does not identify one row (not unique, or NULL): rows would be
// merged in the archive.
#pragma once

#include <optional>
#include <string>

#include "policy/policy.hpp"
#include "stores/sqlite/sqlite.hpp"

namespace retentiond {

// A message naming the foreign key, trigger or key and what to do, or
// nullopt when acting on the rule's table changes nothing else.
std::optional<std::string> side_effects_of(sqlite::Database& db, const Rule& rule, Action action);

}  // namespace retentiond
