#include "approval/approved_plan.hpp"

#include <date/date.h>
#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <map>
#include <tuple>

#include "approval/ssh_keygen.hpp"
#include "sweep/sweep.hpp"
#include "time/anchor.hpp"
#include "util/digest.hpp"
#include "util/files.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kPlanFormat = 1;

std::string format_instant(std::chrono::system_clock::time_point t) {
  return date::format("%FT%TZ", std::chrono::floor<std::chrono::seconds>(t));
}

// "YYYY-MM-DDTHH:MM:SSZ", as format_instant writes it.
std::optional<std::chrono::sys_seconds> parse_instant(const std::string& text) {
  if (text.size() != 20 || text[10] != 'T' || text[13] != ':' || text[16] != ':' ||
      text[19] != 'Z') {
    return std::nullopt;
  }
  auto day = parse_date_text(std::string_view(text).substr(0, 10));
  auto number = [&](std::size_t at, int max) -> std::optional<int> {
    int n = 0;
    auto [ptr, ec] = std::from_chars(text.data() + at, text.data() + at + 2, n);
    if (ec != std::errc() || ptr != text.data() + at + 2 || n > max) return std::nullopt;
    return n;
  };
  auto h = number(11, 23), m = number(14, 59), s = number(17, 60);
  if (!day || !h || !m || !s) return std::nullopt;
  return std::chrono::sys_seconds{*day} + std::chrono::hours{*h} + std::chrono::minutes{*m} +
         std::chrono::seconds{*s};
}

using EntryKey = std::tuple<std::string, int, std::string>;  // rule, stage, store

struct PlannedEntry {
  std::string cutoff;
  std::int64_t matched = 0;
};

struct ParsedPlan {
  std::string policy_sha256;
  Day as_of;
  std::chrono::sys_seconds made_at;
  std::vector<std::string> rules;
  std::map<EntryKey, PlannedEntry> entries;
};

std::optional<ParsedPlan> parse_plan(const std::string& bytes) {
  try {
    json j = json::parse(bytes);
    if (j.at("retentiond_plan").get<int>() != kPlanFormat) return std::nullopt;
    ParsedPlan p;
    p.policy_sha256 = j.at("policy_sha256").get<std::string>();
    auto as_of = parse_date_text(j.at("as_of").get<std::string>());
    auto made = parse_instant(j.at("made_at").get<std::string>());
    if (!as_of || !made) return std::nullopt;
    p.as_of = *as_of;
    p.made_at = *made;
    p.rules = j.at("rules").get<std::vector<std::string>>();
    for (const auto& e : j.at("entries")) {
      EntryKey key{e.at("rule").get<std::string>(), e.at("stage").get<int>(),
                   e.at("store").get<std::string>()};
      p.entries[key] = {e.at("cutoff").get<std::string>(), e.at("matched").get<std::int64_t>()};
    }
    return p;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

nlohmann::ordered_json plan_document(const Policy& policy, const Report& dry_run,
                                     const std::vector<std::string>& rules,
                                     std::chrono::system_clock::time_point made_at) {
  nlohmann::ordered_json doc;
  doc["retentiond_plan"] = kPlanFormat;
  doc["policy"] = policy.file.string();
  doc["policy_sha256"] = policy.sha256;
  doc["timezone"] = policy.timezone;
  doc["as_of"] = dry_run.as_of;
  doc["made_at"] = format_instant(made_at);
  doc["rules"] = rules;
  auto entries = nlohmann::ordered_json::array();
  for (const auto& e : dry_run.entries) {
    nlohmann::ordered_json entry;
    entry["rule"] = e.rule;
    entry["stage"] = e.stage;
    entry["action"] = e.action;
    entry["store"] = e.store;
    entry["table"] = e.table;
    entry["cutoff"] = e.cutoff;
    entry["matched"] = e.counts.matched;
    entries.push_back(std::move(entry));
  }
  doc["entries"] = std::move(entries);
  doc["totals"] = {{"matched", dry_run.totals().matched}};
  return doc;
}

Result<void> write_plan_file(const fs::path& file, const nlohmann::ordered_json& plan) {
  fs::path tmp = file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << plan.dump(2) << '\n';
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return fail(ExitCode::cant_create, fmt::format("cannot write the plan {}", file.string()));
    }
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return fail(ExitCode::cant_create,
                fmt::format("cannot write the plan {}: {}", file.string(), ec.message()));
  }
  return {};
}

Result<ApprovedPlan> approve_plan(const Policy& policy, const fs::path& file, const Clock& clock,
                                  Logger& log) {
  auto refuse = [&](const std::string& why) {
    return fail(ExitCode::no_perm,
                fmt::format("plan {} refused, nothing was done: {}", file.string(), why));
  };
  if (!policy.approval) {
    return refuse(fmt::format(
        "the policy {} has no approval: {{ allowed_signers: FILE }} to check its signature against",
        policy.file.string()));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(ExitCode::no_input, fmt::format("cannot read the plan {}", file.string()));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  fs::path signature = file;
  signature += ".sig";
  if (std::error_code ec; !fs::exists(signature, ec)) {
    return refuse(fmt::format(
        "it is not signed (no {}); an approver signs it with: ssh-keygen -Y sign -f KEY -n {} {}",
        signature.string(), kPlanSignatureNamespace, file.string()));
  }
  auto signer = verify_ssh_signature(file, signature, policy.approval->allowed_signers);
  if (!signer) {
    if (signer.error().code != ExitCode::no_perm) return std::unexpected(signer.error());
    return refuse(signer.error().message);
  }

  auto plan = parse_plan(bytes);
  if (!plan) return refuse("it is not a retentiond plan (retentiond plan --out writes one)");
  if (plan->policy_sha256 != policy.sha256) {
    return refuse(fmt::format(
        "the policy changed since the plan was made (plan made for policy sha256 {}, {} is now "
        "{}); make and approve a new plan",
        plan->policy_sha256, policy.file.string(), policy.sha256));
  }
  // The age is counted on the calendar, as periods are: "7 days" from the
  // time the plan was made.
  auto now = std::chrono::floor<std::chrono::seconds>(clock.now());
  Day made_day = std::chrono::floor<date::days>(plan->made_at);
  auto expires = plan->made_at + (expiry_of(made_day, policy.approval->max_age) - made_day);
  if (now > expires) {
    return refuse(fmt::format("it is stale: made at {}, older than approval.max_age ({})",
                              format_instant(plan->made_at), to_string(policy.approval->max_age)));
  }
  if (Day now_day = today(policy, clock); plan->as_of > now_day) {
    return refuse(fmt::format("it is for {} and today is {}: a sweep never deletes early",
                              format_day(plan->as_of), format_day(now_day)));
  }
  for (const auto& name : plan->rules) {
    if (!policy.find_rule(name)) return refuse(fmt::format("the policy has no rule '{}'", name));
  }

  // What the stages match now, at the plan's as_of: only records inserted
  // since with an old anchor can add to it.
  SweepOptions dry;
  dry.dry_run = true;
  dry.rules = plan->rules;
  dry.as_of = plan->as_of;
  auto counted = run_sweep(policy, dry, clock, log);
  if (!counted) return std::unexpected(counted.error());
  if (counted->code != ExitCode::ok) {
    return fail(counted->code, fmt::format("plan {}: the check before acting could not count every "
                                           "stage (above); nothing was done",
                                           file.string()));
  }
  std::vector<std::string> exceeded;
  const std::int64_t tolerance = policy.approval->tolerance;
  for (const auto& e : counted->report.entries) {
    auto it = plan->entries.find({e.rule, e.stage, e.store});
    std::int64_t planned = it == plan->entries.end() ? 0 : it->second.matched;
    if (it != plan->entries.end() && it->second.cutoff != e.cutoff) {
      exceeded.push_back(fmt::format("rule '{}' stage {} on store '{}': cutoff {} now, {} planned",
                                     e.rule, e.stage, e.store, e.cutoff, it->second.cutoff));
    } else if (e.counts.matched > planned + tolerance) {
      exceeded.push_back(
          fmt::format("rule '{}' stage {} on store '{}' now matches {} record(s), the plan {}",
                      e.rule, e.stage, e.store, e.counts.matched, planned));
    }
  }
  if (!exceeded.empty()) {
    return refuse(fmt::format("it is exceeded (approval.tolerance {}): {}", tolerance,
                              fmt::join(exceeded, "; ")));
  }
  return ApprovedPlan{plan->as_of, plan->rules, sha256_hex(bytes), *signer};
}

}  // namespace retentiond
