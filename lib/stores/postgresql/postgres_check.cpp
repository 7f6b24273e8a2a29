// `check` on a PostgreSQL store: tables, columns, the anchor's type against
// anchor_format, the anchor's index, and every privilege a real sweep will
// need, named all at once, so that a sweep never fails half-way for want of
// one.
#include <fmt/format.h>

#include "stores/postgresql/postgres_store.hpp"

namespace retentiond {
namespace {

using pq::quote;

bool any_stage(const Rule& rule, Action action) {
  for (const auto& s : rule.stages)
    if (s.action == action) return true;
  return false;
}

// Deletes after an archive stage act in the archive too.
bool deletes_in_archive(const Rule& rule) {
  const Stage* archive = rule.archive_stage();
  if (!archive) return false;
  for (const auto& s : rule.stages)
    if (s.number > archive->number) return true;
  return false;
}

}  // namespace

void PostgresStore::check(const Rule& rule, CheckFindings& out) {
  const TableInfo& info = table(rule.table);
  std::string rel = qualified(rule.table);
  if (!info.exists) {
    out.errors.push_back(
        fmt::format("{}: table {} does not exist (rule '{}')", label(), rel, rule.name));
    return;
  }
  for (const auto& [column, why] : columns_used(rule)) {
    if (!info.column(column)) {
      out.errors.push_back(fmt::format("{}: table {} has no column '{}' (the {} of rule '{}')",
                                       label(), rel, column, why, rule.name));
      return;
    }
  }
  // The anchor's type and anchor_format must say the same thing.
  const Column& anchor = *info.column(rule.anchor);
  AnchorKind kind = anchor_kind(rule);
  std::string format(to_string(rule.anchor_format));
  std::optional<std::string> disagreement;
  switch (kind) {
    case AnchorKind::date:
      if (rule.anchor_format_set && rule.anchor_format != AnchorFormat::date)
        disagreement = "a date column is read as a date; remove anchor_format or write date";
      break;
    case AnchorKind::timestamp:
    case AnchorKind::timestamptz:
      if (rule.anchor_format_set && rule.anchor_format != AnchorFormat::datetime)
        disagreement =
            "a timestamp column is read as a date and time; remove anchor_format or write "
            "datetime";
      break;
    case AnchorKind::text:
      if (rule.anchor_format == AnchorFormat::unixepoch)
        disagreement = "a text column holds date or datetime text; accepted: date, datetime";
      break;
    case AnchorKind::integer:
      if (rule.anchor_format != AnchorFormat::unixepoch)
        disagreement = "an integer column holds seconds since 1970; write anchor_format: unixepoch";
      break;
    case AnchorKind::unusable:
      disagreement =
          "this type cannot be read as a date; accepted: date, timestamp, timestamptz, or text "
          "and integer with anchor_format";
      break;
  }
  if (disagreement) {
    out.errors.push_back(fmt::format(
        "{}: anchor column '{}' of table {} is of type {}, but the rule says anchor_format {}: {} "
        "(rule '{}')",
        label(), rule.anchor, rel, anchor.type, rule.anchor_format_set ? format : "(none)",
        *disagreement, rule.name));
  }
  if (rule.hold) {
    if (auto* t = std::get_if<HoldByTable>(&*rule.hold)) {
      const TableInfo& hold = table(t->table);
      if (!hold.exists) {
        out.errors.push_back(fmt::format("{}: hold table {} does not exist (rule '{}')", label(),
                                         qualified(t->table), rule.name));
      } else if (!hold.column(t->key)) {
        out.errors.push_back(fmt::format("{}: hold table {} has no column '{}' (rule '{}')",
                                         label(), qualified(t->table), t->key, rule.name));
      }
    }
  }
  auto indexed = conn_->exec(
      "SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a ON a.attrelid = "
      "i.indrelid AND a.attnum = i.indkey[0] WHERE i.indrelid = $1::regclass AND a.attname = $2",
      {rel, rule.anchor});
  if (indexed.rows() == 0) {
    out.warnings.push_back(
        {spec_.name, rule.table,
         fmt::format("anchor column '{}' of table {} has no index: every sweep of rule '{}' will "
                     "scan the whole table (CREATE INDEX ON {} ({}))",
                     rule.anchor, rel, rule.name, rel, quote(rule.anchor))});
  }

  // Privileges, all of them: a dry run needs only SELECT; a sweep needs the
  // rest. Row locks (FOR UPDATE) need UPDATE, even to delete.
  std::vector<std::pair<std::string, std::string>> needed;  // privilege, on what
  auto need_table = [&](const std::string& privilege, const std::string& on) {
    auto r = conn_->exec("SELECT has_table_privilege($1, $2)", {on, privilege});
    if (r.text(0, 0) != "t") needed.emplace_back(privilege, "TABLE " + on);
  };
  auto schema_ok = conn_->exec("SELECT has_schema_privilege($1, 'USAGE')", {spec_.schema});
  if (schema_ok.text(0, 0) != "t") needed.emplace_back("USAGE", "SCHEMA " + quote(spec_.schema));
  need_table("SELECT", rel);
  bool erases = any_stage(rule, Action::erase) || any_stage(rule, Action::archive);
  if (erases) need_table("DELETE", rel);
  need_table("UPDATE", rel);
  if (rule.hold) {
    if (auto* t = std::get_if<HoldByTable>(&*rule.hold); t && table(t->table).exists)
      need_table("SELECT", qualified(t->table));
  }
  // The bookkeeping schema, where each batch's audit entry waits for the log.
  auto outbox = conn_->exec("SELECT to_regclass('retentiond.outbox') IS NOT NULL");
  if (outbox.text(0, 0) == "t") {
    auto usage = conn_->exec("SELECT has_schema_privilege('retentiond', 'USAGE')");
    if (usage.text(0, 0) != "t") needed.emplace_back("USAGE", "SCHEMA retentiond");
    for (const char* p : {"SELECT", "INSERT", "DELETE"}) need_table(p, "retentiond.outbox");
    auto seq = conn_->exec("SELECT has_sequence_privilege('retentiond.outbox_id_seq', 'USAGE')");
    if (seq.text(0, 0) != "t") needed.emplace_back("USAGE", "SEQUENCE retentiond.outbox_id_seq");
  } else {
    auto create = conn_->exec("SELECT has_database_privilege(current_database(), 'CREATE')");
    if (create.text(0, 0) != "t")
      needed.emplace_back("CREATE", "DATABASE " + quote(conn_->database()) +
                                        " (for the bookkeeping schema retentiond, or create it "
                                        "first: CREATE SCHEMA retentiond AUTHORIZATION ...)");
  }
  auto role = conn_->exec("SELECT current_user").text(0, 0);
  for (const auto& [privilege, on] : needed) {
    out.errors.push_back(
        fmt::format("{}: role '{}' lacks {} on {}, which a sweep of rule '{}' "
                    "needs (GRANT {} ON {} TO {})",
                    label(), role, privilege, on, rule.name, privilege, on.substr(0, on.find(" (")),
                    quote(role)));
  }
}

void PostgresStore::check_archive(const Rule& rule, Store& live, CheckFindings& out) {
  const TableInfo& info = table(rule.table);
  std::string rel = qualified(rule.table);
  auto role = conn_->exec("SELECT current_user").text(0, 0);
  auto lacks = [&](const std::string& privilege, const std::string& on) {
    out.errors.push_back(
        fmt::format("{}: role '{}' lacks {} on {}, which archiving rule '{}' "
                    "needs (GRANT {} ON {} TO {})",
                    label(), role, privilege, on, rule.name, privilege, on, quote(role)));
  };
  if (!info.exists) {
    out.notes.push_back({spec_.name, rule.table,
                         fmt::format("archive table {} will be created by the first sweep with "
                                     "the columns of the live table",
                                     rel)});
    auto schema = conn_->exec("SELECT to_regnamespace($1) IS NOT NULL", {quote(spec_.schema)});
    if (schema.text(0, 0) == "t") {
      if (conn_->exec("SELECT has_schema_privilege($1, 'CREATE')", {spec_.schema}).text(0, 0) !=
          "t")
        lacks("CREATE", "SCHEMA " + quote(spec_.schema));
    } else if (conn_->exec("SELECT has_database_privilege(current_database(), 'CREATE')")
                   .text(0, 0) != "t") {
      lacks("CREATE", "DATABASE " + quote(conn_->database()));
    }
    return;
  }
  if (auto* source = dynamic_cast<PostgresStore*>(&live)) {
    for (const auto& c : source->table(rule.table).columns) {
      if (!info.column(c.name)) {
        out.errors.push_back(fmt::format(
            "{}: archive table {} has no column '{}', which the live table has (rule '{}')",
            label(), rel, c.name, rule.name));
        return;
      }
    }
  }
  std::vector<std::string> privileges{"SELECT", "INSERT"};
  if (deletes_in_archive(rule)) privileges.insert(privileges.end(), {"DELETE", "UPDATE"});
  for (const auto& p : privileges) {
    if (conn_->exec("SELECT has_table_privilege($1, $2)", {rel, p}).text(0, 0) != "t")
      lacks(p, "TABLE " + rel);
  }
}

}  // namespace retentiond
