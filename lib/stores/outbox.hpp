// The outbox protocol shared by every store kind: a batch's audit entry is
// written into the store in the same transaction as the change, appended to
// the audit log after the commit, and its outbox row removed once the log is
// synced. After a crash, the entries still in the outbox are appended unless
// the log already has them (docs/audit-protocol.md).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_log.hpp"
#include "util/error.hpp"

namespace retentiond {

struct OutboxRow {
  std::int64_t id = 0;
  std::string entry;  // the entry's JSON
};

// Appends to `audit` the entries of `rows` that it does not have yet and
// syncs it. `settled` receives the ids of every row now safely in the log.
// A row that is not an audit entry is named (with `label`) as an error
// (65): it must be logged by hand.
Result<int> settle_outbox_rows(const std::vector<OutboxRow>& rows, AuditLog& audit,
                               const std::string& label, std::vector<std::int64_t>& settled);

}  // namespace retentiond
