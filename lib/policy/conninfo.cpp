#include "policy/conninfo.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <string_view>

namespace retentiond {

namespace {

std::string trimmed_message(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Options {
  PQconninfoOption* options = nullptr;
  ~Options() {
    if (options) PQconninfoFree(options);
  }
};

}  // namespace

ConninfoCheck check_conninfo(const std::string& conninfo) {
  ConninfoCheck check;
  char* error = nullptr;
  Options parsed{PQconninfoParse(conninfo.c_str(), &error)};
  if (!parsed.options) {
    check.error = error ? trimmed_message(error) : std::string("cannot be read");
    if (error) PQfreemem(error);
    return check;
  }
  for (auto* o = parsed.options; o->keyword; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val && *o->val) check.has_password = true;
  }
  return check;
}

std::string redacted_conninfo(const std::string& conninfo) {
  char* error = nullptr;
  Options parsed{PQconninfoParse(conninfo.c_str(), &error)};
  if (error) PQfreemem(error);
  if (!parsed.options) return "(unreadable connection string)";
  std::string out;
  for (auto* o = parsed.options; o->keyword; ++o) {
    if (!o->val || std::string_view(o->keyword) == "password") continue;
    if (!out.empty()) out += ' ';
    std::string_view value(o->val);
    bool plain = !value.empty() && value.find_first_of(" '\\") == std::string_view::npos;
    out +=
        plain ? fmt::format("{}={}", o->keyword, value) : fmt::format("{}='{}'", o->keyword, value);
  }
  return out;
}

}  // namespace retentiond
