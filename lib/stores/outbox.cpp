#include "stores/outbox.hpp"

#include <fmt/format.h>

#include <optional>

namespace retentiond {

Result<int> settle_outbox_rows(const std::vector<OutboxRow>& rows, AuditLog& audit,
                               const std::string& label, std::vector<std::int64_t>& settled) {
  if (rows.empty()) return 0;
  std::vector<std::pair<std::int64_t, AuditEntry>> pending;
  for (const auto& row : rows) {
    std::optional<AuditEntry> entry;
    try {
      entry = AuditEntry::from_json(nlohmann::json::parse(row.entry));
    } catch (const nlohmann::json::exception&) {
    }
    if (!entry) {
      return fail(
          ExitCode::data_error,
          fmt::format("{}: outbox row {} is damaged; it must be logged by hand", label, row.id));
    }
    pending.emplace_back(row.id, std::move(*entry));
  }
  auto logged = audit.logged_entries();
  if (!logged) return std::unexpected(logged.error());
  int appended = 0;
  for (auto& [id, entry] : pending) {
    if (!logged->count(AuditLog::entry_key(entry))) {
      auto seq = audit.append(entry);
      if (!seq) return std::unexpected(seq.error());
      ++appended;
    }
    settled.push_back(id);
  }
  if (auto synced = audit.sync(); !synced) return std::unexpected(synced.error());
  return appended;
}

}  // namespace retentiond
