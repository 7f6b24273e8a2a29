// A store as the sweep sees it: one interface over the kinds (SQLite files,
// PostgreSQL databases, folder trees of files). The sweep above it decides
// which stage acts on which anchor days, in which order, and records what
// committed; a store knows how to count and change its own records, one short
// transaction (one batch) at a time, and how to keep each batch's audit entry
// with the change until the audit log has it.
//
// The kinds are a closed set: open_store() chooses among them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"
#include "stores/store_error.hpp"
#include "time/calendar.hpp"
#include "util/error.hpp"

namespace retentiond {

// The anchor days a stage acts on: after < day <= through. `after` is the
// next stage's cutoff (records past it belong to that stage), none for the last.
struct DayWindow {
  std::optional<Day> after;
  Day through;
};

// Where a rule's records are in a store: its own table in the live store, or
// the copy of that table in the archive store.
enum class Place { live, archive };

class Store;
class ReceiptLeaves;

// What one report entry acts on: a rule's stage in one place.
struct StageWork {
  const Rule* rule = nullptr;
  DayWindow window;
  Action action = Action::erase;
  Place place = Place::live;
  // Place::archive: the rule's live store, whose hold table also holds the
  // archived records. Of the same kind as the store acted on.
  Store* live = nullptr;
  // Action::archive: where the records go. Of the same kind (the loader
  // refuses an archive of another kind).
  Store* archive = nullptr;
};

struct BatchResult {
  std::int64_t affected = 0;
  std::int64_t conflicts = 0;
  bool more = false;                             // the window may hold more records
  std::optional<AuditEntry> entry;               // what was committed, to append to the audit log
  std::chrono::microseconds write_lock_held{0};  // the batch's transaction, begin to commit
  // Another connection committed to the store since the previous batch: an
  // application is writing, and the sweep leaves it room (sweep/batch_pacer.hpp).
  // Only where a batch locks out every other writer (SQLite).
  bool others_writing = false;
};

// The batches of one StageWork, in the order the store chose.
class Batches {
 public:
  virtual ~Batches() = default;
  // One transaction: up to `limit` records of the work acted on (each one
  // itself past its period, not held, not already done), and the batch's
  // audit entry written to the store's outbox in the same commit. `entry`
  // carries the fields known before (rule, stage, ...); time, affected and
  // keys_sha256 are filled in here. When `more` is false the work is done.
  // Throws StoreError; the batch is then rolled back whole.
  virtual BatchResult next(int limit, AuditEntry entry) = 0;
  // For a store that counts while it acts (Store::counts_while_acting): the
  // records its batches found past the period and not held (matched), held,
  // and undated, so far; complete once a batch said `more` is false.
  virtual Counts seen() const { return {}; }
};

// What `check` found on one rule.
struct CheckFinding {
  std::string store;
  std::string table;
  std::string message;
};
struct CheckFindings {
  std::vector<std::string> errors;  // each makes `check` exit 69
  std::vector<CheckFinding> warnings;
  std::vector<CheckFinding> notes;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual const StoreSpec& spec() const = 0;
  // "store 'NAME' (where it is)", for messages; never a password.
  virtual std::string label() const = 0;

  // Whether the rule's table (or its archive copy) exists here.
  virtual bool has_table(const Rule& rule) = 0;

  // Why acting on the rule here would change something no rule names
  // (cascades, triggers) or lose records (an archive key that is not
  // unique); nullopt when the work may go ahead.
  virtual std::optional<std::string> refusal(const Rule& rule, Action action) = 0;

  // matched and held in the work's window; with `with_undated`, also the
  // rule's records whose anchor cannot be read.
  virtual Counts count(const StageWork& work, bool with_undated) = 0;

  // The batches that act on the work; `matched` is what count() found, for
  // choosing an order. REQUIRES: not a dry run.
  virtual std::unique_ptr<Batches> batches(const StageWork& work, std::int64_t matched) = 0;
  // Whether counting a stage costs as much as acting on it: a files store
  // walks its whole tree for either, reading every inode on a cold cache.
  // The sweep then does not count before acting, and takes the counts from
  // the batches (Batches::seen). A dry run still counts.
  virtual bool counts_while_acting() const { return false; }

  // Takes the rule's exclusive right to act on `work` for as long as the
  // returned handle lives: several daemons sharing a store act on each
  // record once. nullptr when someone else holds it (the rule is busy).
  // Stores that only one host can write return a handle at once.
  class Claim {
   public:
    virtual ~Claim() = default;
  };
  virtual std::unique_ptr<Claim> claim(const StageWork& work) = 0;

  // Appends to `audit` every outbox entry of this installation that a crash
  // left behind (unless the log already has it) and empties the outbox.
  // Returns how many were appended.
  virtual Result<int> settle_outbox(AuditLog& audit) = 0;
  // The entry of the last batch is now appended to the audit log.
  virtual void outbox_entry_logged() = 0;
  // Removes the outbox rows of the logged entries, in a transaction of its own.
  // REQUIRES: the audit log has been synced since they were appended.
  virtual void forget_outbox_rows() = 0;

  // `check` for one rule on its live store: the table and columns it names,
  // their types, an anchor without an index, the privileges a sweep needs.
  virtual void check(const Rule& rule, CheckFindings& out) = 0;
  // `check` for the rule's archive copy in this store (which exists): the
  // table, if there, has the live table's columns; the privileges to archive.
  virtual void check_archive(const Rule& rule, Store& live, CheckFindings& out) = 0;
};

struct StoreOptions {
  bool dry_run = true;  // read-only: opens nothing for writing, creates nothing
  bool create = false;  // an archive destination: created when missing
  std::chrono::milliseconds busy_timeout{5000};
  int cache_mib = 16;  // SQLite page cache of a connection
  const date::time_zone* zone = nullptr;
  std::string hmac_key;
  // Who writes the outbox rows: the installation (its state directory), so
  // that daemons sharing a database each settle only their own.
  std::string owner;
  // The state directory, where stores without transactions (files) keep
  // their outbox; empty in a dry run.
  std::filesystem::path state_dir;
  // Where each batch's key leaves go, for erasure receipts; null in a dry
  // run (and for a store used alone, in tests: the root is still computed).
  const ReceiptLeaves* receipts = nullptr;
};

// Whether the store is there at all. An archive that does not exist yet
// holds nothing; a dry run must not create it.
bool store_exists(const StoreSpec& spec);

// `check` for an archive destination that does not exist yet: a note that
// the first sweep creates it, or an error when it could not be.
void check_absent_store(const StoreSpec& spec, const Rule& rule, CheckFindings& out);

// Opens the store of `spec`. Throws StoreError when it cannot be opened.
std::unique_ptr<Store> open_store(const StoreSpec& spec, const StoreOptions& options);

// "store 'NAME' (where it is)" from the spec alone; never a password.
std::string store_label(const StoreSpec& spec);

// The message and exit code for a failure in the store of `spec`.
Error explain_store_error(const StoreSpec& spec, const StoreError& error);

// Every column a rule reads or writes in its own table, with why.
std::vector<std::pair<std::string, std::string>> columns_used(const Rule& rule);

// "2026-11-27T03:15:00.123Z"
std::string utc_timestamp(std::chrono::system_clock::time_point t);

}  // namespace retentiond
