#include "stores/files/files_outbox.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "stores/files/tree.hpp"
#include "stores/store_error.hpp"

namespace retentiond::files {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void cannot(std::string_view what, const fs::path& path, int error) {
  throw StoreError(StoreError::Kind::unavailable,
                   fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(error)));
}

void fsync_folder(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) cannot("sync folder", dir, errno);
}

// A store name as part of a file name: letters, digits, '_' and '-' as they
// are, every other byte %XX (names in a policy are free text).
std::string safe_name(std::string_view name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string_view action_name(Action a) { return to_string(a); }

// Paths are bytes, not always UTF-8, which JSON text must be: the intent
// holds them in hex.
std::string hex_of(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

std::optional<std::string> bytes_of(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [ptr, err] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (err != std::errc() || ptr != hex.data() + i + 2) return std::nullopt;
    out += static_cast<char>(v);
  }
  return out;
}

std::optional<Action> action_of(std::string_view s) {
  if (s == "delete") return Action::erase;
  if (s == "archive") return Action::archive;
  return std::nullopt;
}

}  // namespace

IntentOutbox::IntentOutbox(fs::path state_dir, std::string store)
    : dir_(std::move(state_dir) / "outbox-files"), prefix_(safe_name(store) + ".") {}

fs::path IntentOutbox::file_of(std::int64_t number) const {
  return dir_ / fmt::format("{}{}.json", prefix_, number);
}

void IntentOutbox::write_durably(std::int64_t number, const std::string& text) {
  if (::mkdir(dir_.c_str(), 0700) == 0) {
    fsync_folder(dir_.parent_path());
  } else if (errno != EEXIST) {
    cannot("create", dir_, errno);
  }
  fs::path file = file_of(number);
  fs::path tmp = file;
  tmp += ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) cannot("write", tmp, errno);
    for (std::size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) cannot("write", tmp, errno);
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) cannot("sync", tmp, errno);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) cannot("write", file, errno);
  fsync_folder(dir_);
}

void IntentOutbox::write(Intent& intent) {
  if (last_ < 0) {
    last_ = 0;
    for (const auto& p : pending()) last_ = std::max(last_, p.number);
  }
  intent.number = ++last_;
  nlohmann::json j;
  j["entry"] = intent.entry.to_json();
  j["action"] = action_name(intent.action);
  j["root"] = intent.root.string();
  if (intent.action == Action::archive) j["archive_root"] = intent.archive_root.string();
  auto& paths = j["paths_hex"] = nlohmann::json::array();
  for (const auto& p : intent.paths) paths.push_back(hex_of(p));
  j["remove_empty_folders"] = intent.remove_empty_folders;
  j["done"] = false;
  // The root names are the policy's (UTF-8); a root that is not stays readable.
  write_durably(intent.number, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void IntentOutbox::complete(std::int64_t number, const AuditEntry& entry) {
  nlohmann::json j;
  j["entry"] = entry.to_json();
  j["done"] = true;
  write_durably(number, j.dump());
}

void IntentOutbox::remove(std::int64_t number) {
  fs::path file = file_of(number);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) cannot("remove", file, errno);
}

void IntentOutbox::remove_torn() const {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(prefix_) && name.ends_with(".json.tmp")) fs::remove(e.path(), ec);
  }
}

std::vector<IntentOutbox::Pending> IntentOutbox::pending() const {
  std::vector<Pending> out;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(prefix_) || !name.ends_with(".json")) continue;
    std::string_view digits(name);
    digits.remove_prefix(prefix_.size());
    digits.remove_suffix(5);
    std::int64_t number = 0;
    auto [ptr, err] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (err != std::errc() || ptr != digits.data() + digits.size() || digits.empty()) continue;
    Pending p{number, e.path(), std::nullopt};
    std::ifstream in(e.path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    try {
      auto j = nlohmann::json::parse(text);
      auto entry = AuditEntry::from_json(j.at("entry"));
      if (entry) {
        Intent intent;
        intent.number = number;
        intent.entry = std::move(*entry);
        intent.done = j.at("done").get<bool>();
        if (!intent.done) {
          auto action = action_of(j.at("action").get<std::string>());
          if (action) {
            intent.action = *action;
            intent.root = j.at("root").get<std::string>();
            if (*action == Action::archive)
              intent.archive_root = j.at("archive_root").get<std::string>();
            intent.remove_empty_folders = j.value("remove_empty_folders", false);
            bool readable = true;
            for (const auto& h : j.at("paths_hex")) {
              auto path = bytes_of(h.get<std::string>());
              readable = readable && path.has_value();
              if (path) intent.paths.push_back(std::move(*path));
            }
            if (readable) p.intent = std::move(intent);
          }
        } else {
          p.intent = std::move(intent);
        }
      }
    } catch (const nlohmann::json::exception&) {
      // p.intent stays empty: the caller names the damaged file.
    }
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const Pending& a, const Pending& b) { return a.number < b.number; });
  return out;
}

}  // namespace retentiond::files
