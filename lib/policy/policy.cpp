#include "policy/policy.hpp"

#include <fmt/format.h>

namespace retentiond {

std::string_view to_string(StoreKind kind) {
  switch (kind) {
    case StoreKind::sqlite:
      return "sqlite";
    case StoreKind::postgresql:
      return "postgresql";
    case StoreKind::files:
      return "files";
  }
  return "?";
}

std::string_view to_string(FileAnchor anchor) {
  switch (anchor) {
    case FileAnchor::mtime:
      return "mtime";
    case FileAnchor::name:
      return "name";
  }
  return "?";
}

std::string_view to_string(Action action) {
  switch (action) {
    case Action::erase:
      return "delete";
    case Action::archive:
      return "archive";
    case Action::anonymize:
      return "anonymize";
  }
  return "?";
}

std::string to_string(const AnonymizeMethod& method) {
  using K = AnonymizeMethod::Kind;
  switch (method.kind) {
    case K::null:
      return "null";
    case K::value:
      return "value";
    case K::hmac:
      return "hmac";
    case K::year:
      return "year";
    case K::month:
      return "month";
    case K::truncate:
      return fmt::format("truncate {}", method.truncate);
  }
  return "?";
}

const Stage* Rule::archive_stage() const {
  for (const auto& stage : stages) {
    if (stage.action == Action::archive) return &stage;
  }
  return nullptr;
}

const StoreSpec* Policy::find_store(std::string_view name) const {
  for (const auto& store : stores) {
    if (store.name == name) return &store;
  }
  return nullptr;
}

const Rule* Policy::find_rule(std::string_view name) const {
  for (const auto& rule : rules) {
    if (rule.name == name) return &rule;
  }
  return nullptr;
}

bool is_plain_identifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name.front())) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace retentiond
