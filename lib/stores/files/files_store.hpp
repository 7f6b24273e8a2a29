// A files store: the regular files under a root folder, each one a record
// whose key is its path relative to the root (docs/files.md). What differs
// from the stores of tables lives here:
//
// - Selection walks the tree as a stream (tree.hpp) with the rule's glob,
//   never following a symbolic link and never reading a folder the pattern
//   cannot reach; the anchor is the file's modification time (its local day
//   in the policy's zone) or the first date written in its path.
// - Every change is made through directory descriptors (unlinkat,
//   renameat2, openat with O_NOFOLLOW), after re-reading the file's metadata
//   right before acting: a file replaced, touched or held since it was
//   selected is left alone.
// - Archive keeps the relative path under the archive's root: a rename on
//   the same filesystem, otherwise a copy (mode, times, synced) renamed into
//   place and its folder synced before the source is unlinked.
// - There is no transaction: a batch's audit entry goes through intent files
//   in the state directory (files_outbox.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stores/files/files_outbox.hpp"
#include "stores/files/tree.hpp"
#include "stores/store.hpp"

namespace retentiond {

class FilesStore final : public Store {
 public:
  // Opens the root (an archive destination with options.create is made, its
  // parent folder must exist). Throws StoreError when it cannot be opened.
  FilesStore(const StoreSpec& spec, const StoreOptions& options);

  const StoreSpec& spec() const override { return spec_; }
  std::string label() const override { return store_label(spec_); }
  // The root is there (the constructor checked it): every files rule's
  // "table" is.
  bool has_table(const Rule& rule) override { return rule.files.has_value(); }
  // Deleting or moving a file changes nothing else.
  std::optional<std::string> refusal(const Rule&, Action) override { return std::nullopt; }
  Counts count(const StageWork& work, bool with_undated) override;
  std::unique_ptr<Batches> batches(const StageWork& work, std::int64_t matched) override;
  // The walk is the cost of a count as much as of acting: count while acting.
  bool counts_while_acting() const override { return true; }
  // One host writes a local tree: the state directory's sweep lock is enough.
  std::unique_ptr<Claim> claim(const StageWork&) override { return std::make_unique<Claim>(); }
  Result<int> settle_outbox(AuditLog& audit) override;
  void outbox_entry_logged() override { logged_intents_.push_back(last_intent_); }
  void forget_outbox_rows() override;
  void check(const Rule& rule, CheckFindings& out) override;
  void check_archive(const Rule& rule, Store& live, CheckFindings& out) override;

  int root_fd() const { return root_.get(); }
  const std::filesystem::path& root() const { return spec_.root; }
  const StoreOptions& options() const { return options_; }

 private:
  friend class FilesBatches;
  files::IntentOutbox& outbox();
  // The paths of an interrupted batch that were acted on, in its order.
  std::vector<std::string> recompute(const files::Intent& intent) const;

  StoreSpec spec_;
  StoreOptions options_;
  files::Fd root_;
  std::optional<files::IntentOutbox> outbox_;
  std::int64_t last_intent_ = 0;
  std::vector<std::int64_t> logged_intents_;
};

// The name of the temporary copy of `name` while it is archived across
// filesystems: in the destination folder, never matched by a pattern.
std::string archive_temp_name(std::string_view name);

}  // namespace retentiond
