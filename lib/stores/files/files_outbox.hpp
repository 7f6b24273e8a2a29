// The outbox of a files store. A file tree has no transaction to carry a
// batch's audit entry with its changes, so the entry travels in an intent
// file of the state directory (docs/files.md):
//
//   1. before a batch acts, STATE/outbox-files/<store>.<n>.json holds the
//      entry's known fields and the relative paths it is about to act on,
//      written to a temporary name, fsynced, renamed, its folder fsynced;
//   2. the batch acts, then syncs the folders it changed;
//   3. the intent is replaced (the same way) by the batch's final entry,
//      without the paths; a batch that changed nothing removes it instead;
//   4. the sweep appends the entry to the audit log; once the log is synced,
//      the intent file is removed.
//
// After a crash, an intent with its final entry is appended as it is unless
// the log already has it; an intent without one is recomputed from the
// trees (a path is done when it left the live tree, and for an archive, is
// in the archive tree), so that the log accounts for exactly what changed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "policy/policy.hpp"

namespace retentiond::files {

struct Intent {
  std::int64_t number = 0;  // assigned by write()
  AuditEntry entry;         // the known fields; complete once done
  Action action = Action::erase;
  std::filesystem::path root;          // the tree the batch takes files from
  std::filesystem::path archive_root;  // Action::archive: the tree they go to
  std::vector<std::string> paths;      // relative to root, in the order acted on
  bool remove_empty_folders = false;   // the rule's: settling finishes the folders' removal
  bool done = false;                   // `entry` is final; `paths` is empty
};

class IntentOutbox {
 public:
  // The intents of store `store` in `state_dir`/outbox-files.
  IntentOutbox(std::filesystem::path state_dir, std::string store);

  // Writes a new intent durably and sets its number. Throws StoreError.
  void write(Intent& intent);
  // Replaces intent `number` durably by its final entry. Throws StoreError.
  void complete(std::int64_t number, const AuditEntry& entry);
  // Removes intent `number`, if there. Throws StoreError.
  void remove(std::int64_t number);

  struct Pending {
    std::int64_t number = 0;
    std::filesystem::path file;
    std::optional<Intent> intent;  // nullopt: the file is damaged
  };
  // The intents a crash left, by number.
  std::vector<Pending> pending() const;
  // Removes the temporary files of intents a crash cut off before their
  // rename: such a batch had not acted yet.
  void remove_torn() const;

 private:
  std::filesystem::path file_of(std::int64_t number) const;
  void write_durably(std::int64_t number, const std::string& text);

  std::filesystem::path dir_;
  std::string prefix_;      // the store's name, made safe for a file name, and '.'
  std::int64_t last_ = -1;  // the highest number in use; -1 until read
};

}  // namespace retentiond::files
