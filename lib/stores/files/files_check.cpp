// `check` on a files store: the root (its existence is checked on opening),
// whether this user could act in it, the hold list, and the archive's place.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "stores/data_paths.hpp"
#include "stores/files/files_store.hpp"
#include "stores/files/hold_list.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;

bool folder_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

void check_writable(const FilesStore& store, const Rule& rule, CheckFindings& out) {
  if (::faccessat(store.root_fd(), ".", W_OK | X_OK, AT_EACCESS) != 0) {
    int error = errno;
    std::string advice = data_paths_advice(error, store.root().string());
    out.warnings.push_back(
        {store.spec().name, rule.table,
         fmt::format("root folder {} is not writable by this user (uid {}): a real sweep run as "
                     "this user could not delete or move files there ({}){}{}",
                     store.root().string(), ::geteuid(), std::strerror(error),
                     advice.empty() ? "" : "; ", advice)});
  }
}

}  // namespace

void FilesStore::check(const Rule& rule, CheckFindings& out) {
  if (!rule.files) {
    out.errors.push_back(
        fmt::format("{}: rule '{}' names a table, but the store holds files", label(), rule.name));
    return;
  }
  check_writable(*this, rule, out);
  if (rule.files->hold) {
    if (auto* l = std::get_if<HoldByList>(&*rule.files->hold)) {
      try {
        auto list = files::HoldList::read(l->list);
        out.notes.push_back({spec_.name, rule.table,
                             fmt::format("hold list {}: {} entr{}", l->list.string(), list.size(),
                                         list.size() == 1 ? "y" : "ies")});
      } catch (const StoreError& e) {
        out.errors.push_back(fmt::format("{}: rule '{}': {}", label(), rule.name, e.what()));
      }
    }
  }
}

void FilesStore::check_archive(const Rule& rule, Store& live, CheckFindings& out) {
  std::error_code ec1, ec2;
  fs::path a = fs::weakly_canonical(spec_.root, ec1);
  fs::path l = fs::weakly_canonical(live.spec().root, ec2);
  if (!ec1 && !ec2 && (folder_within(a, l) || folder_within(l, a))) {
    out.errors.push_back(
        fmt::format("{}: archive root {} and live root {} lie one inside the other (rule '{}')",
                    label(), a.string(), l.string(), rule.name));
    return;
  }
  check_writable(*this, rule, out);
}

}  // namespace retentiond
