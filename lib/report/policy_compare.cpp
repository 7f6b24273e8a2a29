#include "report/policy_compare.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <ostream>

#include "report/html_report.hpp"
#include "stores/store.hpp"
#include "sweep/sweep.hpp"

namespace retentiond {
namespace {

std::string scalar_text(const Scalar& v) {
  if (std::holds_alternative<std::monostate>(v)) return "null";
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  return fmt::format("\"{}\"", std::get<std::string>(v));
}

std::string where_text(const std::vector<WhereCondition>& where) {
  if (where.empty()) return "none";
  std::vector<std::string> parts;
  for (const auto& c : where) {
    std::vector<std::string> values;
    for (const auto& v : c.values) values.push_back(scalar_text(v));
    parts.push_back(values.size() == 1
                        ? fmt::format("{} = {}", c.column, values.front())
                        : fmt::format("{} in ({})", c.column, fmt::join(values, ", ")));
  }
  return fmt::format("{}", fmt::join(parts, " and "));
}

std::string hold_text(const Rule& rule) {
  if (rule.files) {
    const auto& hold = rule.files->hold;
    if (!hold) return "none";
    if (auto* f = std::get_if<HoldByFile>(&*hold)) return fmt::format("file {}", f->name);
    return fmt::format("list {}", std::get<HoldByList>(*hold).list.string());
  }
  if (!rule.hold) return "none";
  if (auto* c = std::get_if<HoldByColumn>(&*rule.hold)) return fmt::format("column {}", c->column);
  const auto& t = std::get<HoldByTable>(*rule.hold);
  return fmt::format("table {} (key {})", t.table, t.key);
}

std::string anchor_text(const Rule& rule) {
  if (rule.files) return std::string(to_string(rule.files->anchor));
  if (!rule.anchor_format_set) return rule.anchor;
  return fmt::format("{} ({})", rule.anchor, to_string(rule.anchor_format));
}

std::string anonymized_text(const Rule& rule) {
  if (!rule.anonymize) return "none";
  std::vector<std::string> parts;
  for (const auto& c : rule.anonymize->columns) {
    std::string method = to_string(c.method);
    if (c.method.kind == AnonymizeMethod::Kind::value)
      method = fmt::format("{} {}", method, scalar_text(c.method.value));
    parts.push_back(fmt::format("{}: {}", c.column, method));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

bool same_store(const StoreSpec* a, const StoreSpec* b) {
  if (!a || !b) return a == b;
  return a->kind == b->kind && a->path == b->path && a->dsn == b->dsn && a->schema == b->schema &&
         a->root == b->root;
}

std::string store_text(const StoreSpec* spec, const std::string& name) {
  return spec ? store_label(*spec) : fmt::format("store '{}'", name);
}

// "what: old → new" when they differ.
void note(std::vector<std::string>& out, std::string_view what, const std::string& old_text,
          const std::string& new_text) {
  if (old_text != new_text)
    out.push_back(fmt::format("{}: {} \u2192 {}", what, old_text, new_text));
}

// Why two versions of a rule select different records; empty when they
// select the same ones (the periods aside).
std::vector<std::string> selection_changes(const Policy& old_policy, const Rule& o,
                                           const Policy& new_policy, const Rule& n) {
  std::vector<std::string> out;
  note(out, "time zone", old_policy.timezone, new_policy.timezone);
  const StoreSpec* os = old_policy.find_store(o.store);
  const StoreSpec* ns = new_policy.find_store(n.store);
  if (o.store != n.store || !same_store(os, ns))
    out.push_back(
        fmt::format("store: {} \u2192 {}", store_text(os, o.store), store_text(ns, n.store)));
  note(out, o.files ? "pattern" : "table", o.table, n.table);
  note(out, "key", o.key, n.key);
  note(out, "anchor", anchor_text(o), anchor_text(n));
  note(out, "where", where_text(o.where), where_text(n.where));
  note(out, "hold", hold_text(o), hold_text(n));
  // Rows already marked are not anonymised again: the mark is part of what a stage selects.
  auto mark = [](const Rule& r) {
    return r.anonymize && r.anonymize->mark ? *r.anonymize->mark : std::string("none");
  };
  note(out, "anonymize mark", mark(o), mark(n));
  return out;
}

std::vector<std::string> other_changes(const Rule& o, const Rule& n) {
  std::vector<std::string> out;
  note(out, "category", o.category.empty() ? "none" : o.category,
       n.category.empty() ? "none" : n.category);
  note(out, "basis", o.basis.empty() ? "none" : o.basis, n.basis.empty() ? "none" : n.basis);
  note(out, "anonymized columns", anonymized_text(o), anonymized_text(n));
  auto folders = [](const Rule& r) { return r.files && r.files->remove_empty_folders; };
  if (folders(o) != folders(n))
    note(out, "remove_empty_folders", folders(o) ? "true" : "false", folders(n) ? "true" : "false");
  return out;
}

ComparedStage compared(const Stage& s) { return {s.number, s.after, s.action, s.to}; }

// Pairs the stages of two versions of a rule: the k-th stage of an action
// with the k-th of the same action (a delete stage whose period moved stays
// "the delete stage"), then what is left in order; the rest are added or
// removed.
std::vector<std::pair<const Stage*, const Stage*>> pair_stages(const Rule* o, const Rule* n) {
  std::vector<std::pair<const Stage*, const Stage*>> pairs;
  std::vector<const Stage*> old_left, new_left;
  if (o)
    for (const auto& s : o->stages) old_left.push_back(&s);
  if (n) {
    for (const auto& s : n->stages) {
      auto it = std::find_if(old_left.begin(), old_left.end(),
                             [&](const Stage* x) { return x->action == s.action; });
      if (it != old_left.end()) {
        pairs.emplace_back(*it, &s);
        old_left.erase(it);
      } else {
        new_left.push_back(&s);
      }
    }
  }
  std::size_t i = 0;
  for (; i < old_left.size() && i < new_left.size(); ++i)
    pairs.emplace_back(old_left[i], new_left[i]);
  for (std::size_t j = i; j < old_left.size(); ++j) pairs.emplace_back(old_left[j], nullptr);
  for (std::size_t j = i; j < new_left.size(); ++j) pairs.emplace_back(nullptr, new_left[j]);
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) {
    int x = a.second ? a.second->number : a.first->number;
    int y = b.second ? b.second->number : b.first->number;
    return x < y;
  });
  return pairs;
}

// The plan's entries of one stage at `as_of`: its cutoff and where it acts.
std::vector<StageTask> tasks_of_stage(const Rule& rule, int stage, Day as_of) {
  std::vector<StageTask> out;
  for (auto& t : stage_tasks(rule, as_of)) {
    if (t.stage->number == stage) out.push_back(std::move(t));
  }
  return out;
}

// Where a stage's records are, as store specs: the live store, and the
// archive after an archive stage.
std::vector<std::string> places_text(const Policy& policy, const Rule& rule, const Stage& stage,
                                     Day as_of) {
  std::vector<std::string> out;
  for (const auto& t : tasks_of_stage(rule, stage.number, as_of)) {
    const StoreSpec* spec = policy.find_store(t.store);
    out.push_back(t.place == Place::archive ? fmt::format("archive {}", store_text(spec, t.store))
                                            : store_text(spec, t.store));
  }
  return out;
}

// Counts records past a window with one policy's stores, opened read-only
// as a plan opens them, each once.
class Counter {
 public:
  explicit Counter(const Policy& policy) : policy_(policy) {}

  // The records of `rule`'s stage anchored in `window`, not held, summed over
  // the places the stage acts in at `as_of`.
  Result<std::int64_t> count(const Rule& rule, const Stage& stage, Day as_of, DayWindow window) {
    std::int64_t total = 0;
    for (const auto& task : tasks_of_stage(rule, stage.number, as_of)) {
      const StoreSpec& spec = *policy_.find_store(task.store);
      try {
        bool archive = task.place == Place::archive;
        Store* s = store(spec, archive);
        if (!s) continue;  // an archive not created yet holds nothing
        if (!s->has_table(rule)) {
          if (archive) continue;
          return fail(ExitCode::unavailable,
                      fmt::format("{}: table '{}' does not exist", s->label(), rule.table));
        }
        StageWork work;
        work.rule = &rule;
        work.window = window;
        work.action = stage.action;
        work.place = task.place;
        work.live = archive ? store(*policy_.find_store(rule.store), false) : nullptr;
        total += s->count(work, false).matched;
      } catch (const StoreError& e) {
        return std::unexpected(explain_store_error(spec, e));
      }
    }
    return total;
  }

 private:
  // Opens the store, or throws StoreError. An archive that does not exist
  // yet holds nothing (nullptr): a dry run never creates it.
  Store* store(const StoreSpec& spec, bool archive) {
    if (auto it = stores_.find(spec.name); it != stores_.end()) return it->second.get();
    if (archive && !store_exists(spec)) return nullptr;
    StoreOptions o;
    o.dry_run = true;
    o.busy_timeout = policy_.busy_timeout;
    o.cache_mib = policy_.cache_mib;
    o.zone = policy_.zone;
    o.hmac_key = policy_.hmac_key;
    return (stores_[spec.name] = open_store(spec, o)).get();
  }

  const Policy& policy_;
  std::map<std::string, std::unique_ptr<Store>> stores_;
};

bool wanted(const std::vector<std::string>& names, const Rule* o, const Rule* n) {
  if (names.empty()) return true;
  for (const auto& name : names) {
    if ((o && o->name == name) || (n && n->name == name)) return true;
  }
  return false;
}

class Comparer {
 public:
  Comparer(const Policy& old_policy, const Policy& new_policy, const CompareOptions& options)
      : old_(old_policy),
        new_(new_policy),
        options_(options),
        old_counter_(old_),
        new_counter_(new_) {}

  PolicyComparison run() {
    PolicyComparison c;
    c.file = new_.file;
    c.sha256 = new_.sha256;
    c.old_file = old_.file;
    c.old_sha256 = old_.sha256;
    c.timezone = new_.timezone;
    c.old_timezone = old_.timezone;
    c.as_of = options_.as_of;
    for (const auto& m : forecast_months(options_.as_of, options_.months))
      c.forecast.push_back(m.last);
    days_.push_back(options_.as_of);
    days_.insert(days_.end(), c.forecast.begin(), c.forecast.end());

    // Same name first; then a rule that only changed its name (same store,
    // table or pattern, and anchor) is a rename, not a removal and an addition.
    std::map<const Rule*, const Rule*> old_of;
    std::vector<const Rule*> old_left;
    for (const auto& o : old_.rules) {
      if (!new_.find_rule(o.name)) old_left.push_back(&o);
    }
    for (const auto& n : new_.rules) {
      if (const Rule* o = old_.find_rule(n.name)) {
        old_of[&n] = o;
        continue;
      }
      auto it = std::find_if(old_left.begin(), old_left.end(), [&](const Rule* o) {
        return same_store(old_.find_store(o->store), new_.find_store(n.store)) &&
               o->table == n.table && o->anchor == n.anchor;
      });
      if (it != old_left.end()) {
        old_of[&n] = *it;
        old_left.erase(it);
      }
    }
    for (const auto& n : new_.rules) {
      const Rule* o = old_of.count(&n) ? old_of[&n] : nullptr;
      if (wanted(options_.rules, o, &n)) c.rules.push_back(compare_rule(o, &n));
    }
    for (const Rule* o : old_left) {
      if (wanted(options_.rules, o, nullptr)) c.rules.push_back(compare_rule(o, nullptr));
    }
    c.code = code_;
    return c;
  }

 private:
  RuleComparison compare_rule(const Rule* o, const Rule* n) {
    RuleComparison r;
    const Rule& any = n ? *n : *o;
    r.rule = any.name;
    if (o) r.old_name = o->name;
    r.category = any.category;
    r.basis = any.basis;
    r.store = any.store;
    r.table = any.table;
    if (o && n) {
      r.selection_changes = selection_changes(old_, *o, new_, *n);
      r.other_changes = other_changes(*o, *n);
    }
    bool same_selection = o && n && r.selection_changes.empty();
    bool any_change = !r.selection_changes.empty() || !r.other_changes.empty();
    for (auto [os, ns] : pair_stages(o, n)) {
      r.stages.push_back(compare_stage(o, os, n, ns, same_selection));
      any_change = any_change || !r.stages.back().changes.empty();
    }
    if (!o)
      r.status = RuleStatus::added;
    else if (!n)
      r.status = RuleStatus::removed;
    else if (o->name != n->name)
      r.status = RuleStatus::renamed;
    else
      r.status = any_change ? RuleStatus::changed : RuleStatus::unchanged;
    return r;
  }

  StageComparison compare_stage(const Rule* o, const Stage* os, const Rule* n, const Stage* ns,
                                bool same_selection) {
    StageComparison s;
    if (os) s.old_stage = compared(*os);
    if (ns) s.new_stage = compared(*ns);
    if (os && ns) {
      note(s.changes, "after", to_string(os->after), to_string(ns->after));
      note(s.changes, "action", std::string(to_string(os->action)),
           std::string(to_string(ns->action)));
      if (os->to != ns->to || !same_store(old_.find_store(os->to), new_.find_store(ns->to))) {
        note(s.changes, "to", os->to.empty() ? "none" : store_text(old_.find_store(os->to), os->to),
             ns->to.empty() ? "none" : store_text(new_.find_store(ns->to), ns->to));
      }
      auto old_places = places_text(old_, *o, *os, options_.as_of);
      auto new_places = places_text(new_, *n, *ns, options_.as_of);
      bool same_places = old_places == new_places;
      if (!same_places) {
        note(s.changes, "its records are in", fmt::format("{}", fmt::join(old_places, " and ")),
             fmt::format("{}", fmt::join(new_places, " and ")));
      }
      s.exact = same_selection && os->action == ns->action && same_places;
    } else if (os) {
      s.changes.push_back(
          fmt::format("stage removed ({} after {})", to_string(os->action), to_string(os->after)));
    } else {
      s.changes.push_back(
          fmt::format("stage added ({} after {})", to_string(ns->action), to_string(ns->after)));
    }
    // An unchanged stage of a rule that selects the same records: nothing
    // differs on any day, and no store needs asking.
    bool unchanged = s.exact && s.changes.empty();
    for (Day day : days_) {
      ComparePoint p;
      p.as_of = day;
      if (os) p.old_cutoff = tasks_of_stage(*o, os->number, day).front().window.through;
      if (ns) p.new_cutoff = tasks_of_stage(*n, ns->number, day).front().window.through;
      if (unchanged) {
        p.newly_due = 0;
        p.no_longer_due = 0;
      } else if (!s.error) {
        count_point(o, os, n, ns, s, p);
      }
      s.points.push_back(p);
    }
    return s;
  }

  void count_point(const Rule* o, const Stage* os, const Rule* n, const Stage* ns,
                   StageComparison& s, ComparePoint& p) {
    auto take = [&](Result<std::int64_t> r, std::optional<std::int64_t>& into) {
      if (r) {
        into = *r;
        return true;
      }
      s.error = r.error().message;
      if (code_ == ExitCode::ok) code_ = r.error().code;
      return false;
    };
    if (s.exact) {
      // The same records, on the current policy's stores: the difference is
      // the records anchored between the two cutoffs.
      const Rule& rule = *n;
      Day lo = std::min(*p.old_cutoff, *p.new_cutoff), hi = std::max(*p.old_cutoff, *p.new_cutoff);
      std::optional<std::int64_t> between = 0;
      if (lo != hi && !take(new_counter_.count(rule, *ns, p.as_of, {lo, hi}), between)) return;
      p.newly_due = *p.new_cutoff > *p.old_cutoff ? *between : 0;
      p.no_longer_due = *p.old_cutoff > *p.new_cutoff ? *between : 0;
      if (!take(new_counter_.count(rule, *ns, p.as_of, {std::nullopt, *p.new_cutoff}), p.new_count))
        return;
      // The old count on the same stores, whose own layout (which stage
      // archives) is the same.
      take(new_counter_.count(rule, *ns, p.as_of, {std::nullopt, *p.old_cutoff}), p.old_count);
      return;
    }
    if (os &&
        !take(old_counter_.count(*o, *os, p.as_of, {std::nullopt, *p.old_cutoff}), p.old_count))
      return;
    if (ns) take(new_counter_.count(*n, *ns, p.as_of, {std::nullopt, *p.new_cutoff}), p.new_count);
  }

  const Policy& old_;
  const Policy& new_;
  const CompareOptions& options_;
  Counter old_counter_;
  Counter new_counter_;
  std::vector<Day> days_;
  ExitCode code_ = ExitCode::ok;
};

nlohmann::ordered_json optional_json(const std::optional<std::int64_t>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}
nlohmann::ordered_json optional_json(const std::optional<Day>& v) {
  return v ? nlohmann::ordered_json(format_day(*v)) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json stage_json(const std::optional<ComparedStage>& s) {
  if (!s) return nullptr;
  nlohmann::ordered_json j;
  j["stage"] = s->number;
  j["after"] = to_string(s->after);
  j["action"] = to_string(s->action);
  j["to"] = s->to.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s->to);
  return j;
}

std::string count_text(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}

std::string stage_title(const RuleComparison& r, const StageComparison& s) {
  const auto& any = s.new_stage ? *s.new_stage : *s.old_stage;
  std::string period;
  if (s.old_stage && s.new_stage && s.old_stage->after != s.new_stage->after)
    period = fmt::format("after {} \u2192 {}", to_string(s.old_stage->after),
                         to_string(s.new_stage->after));
  else
    period = fmt::format("after {}", to_string(any.after));
  return fmt::format("{}, stage {} ({}), {}.{}: {}", r.rule, any.number, to_string(any.action),
                     r.store, r.table, period);
}

}  // namespace

std::string_view to_string(RuleStatus status) {
  switch (status) {
    case RuleStatus::unchanged:
      return "unchanged";
    case RuleStatus::changed:
      return "changed";
    case RuleStatus::added:
      return "added";
    case RuleStatus::removed:
      return "removed";
    case RuleStatus::renamed:
      return "renamed";
  }
  return "?";
}

PolicyComparison compare_policies(const Policy& old, const Policy& current,
                                  const CompareOptions& options) {
  return Comparer(old, current, options).run();
}

nlohmann::ordered_json PolicyComparison::to_json() const {
  nlohmann::ordered_json j;
  j["as_of"] = format_day(as_of);
  j["timezone"] = timezone;
  j["policy"] = {{"file", file.string()}, {"sha256", sha256}, {"timezone", timezone}};
  j["old_policy"] = {
      {"file", old_file.string()}, {"sha256", old_sha256}, {"timezone", old_timezone}};
  auto days = nlohmann::ordered_json::array();
  for (Day d : forecast) days.push_back(format_day(d));
  j["forecast"] = days;
  nlohmann::ordered_json summary;
  for (auto status : {RuleStatus::added, RuleStatus::removed, RuleStatus::renamed,
                      RuleStatus::changed, RuleStatus::unchanged}) {
    auto list = nlohmann::ordered_json::array();
    for (const auto& r : rules) {
      if (r.status != status) continue;
      if (status == RuleStatus::renamed)
        list.push_back({{"old", *r.old_name}, {"new", r.rule}});
      else
        list.push_back(r.rule);
    }
    summary[std::string(to_string(status))] = list;
  }
  j["summary"] = summary;
  auto rule_list = nlohmann::ordered_json::array();
  for (const auto& r : rules) {
    nlohmann::ordered_json jr;
    jr["rule"] = r.rule;
    jr["old_rule"] = r.old_name ? nlohmann::ordered_json(*r.old_name) : nullptr;
    jr["status"] = to_string(r.status);
    jr["category"] = r.category;
    jr["basis"] = r.basis;
    jr["store"] = r.store;
    jr["table"] = r.table;
    jr["selection"] = r.status == RuleStatus::added     ? "added"
                      : r.status == RuleStatus::removed ? "removed"
                      : r.selection_changes.empty()     ? "same"
                                                        : "differs";
    jr["selection_changes"] = r.selection_changes;
    jr["other_changes"] = r.other_changes;
    auto stages = nlohmann::ordered_json::array();
    for (const auto& s : r.stages) {
      nlohmann::ordered_json js;
      js["stage"] = (s.new_stage ? *s.new_stage : *s.old_stage).number;
      js["old"] = stage_json(s.old_stage);
      js["new"] = stage_json(s.new_stage);
      js["exact"] = s.exact;
      js["changes"] = s.changes;
      auto points = nlohmann::ordered_json::array();
      for (const auto& p : s.points) {
        nlohmann::ordered_json jp;
        jp["as_of"] = format_day(p.as_of);
        jp["old_cutoff"] = optional_json(p.old_cutoff);
        jp["new_cutoff"] = optional_json(p.new_cutoff);
        jp["old_past_period"] = optional_json(p.old_count);
        jp["new_past_period"] = optional_json(p.new_count);
        jp["newly_due"] = optional_json(p.newly_due);
        jp["no_longer_due"] = optional_json(p.no_longer_due);
        points.push_back(std::move(jp));
      }
      js["points"] = std::move(points);
      js["error"] = s.error ? nlohmann::ordered_json(*s.error) : nullptr;
      stages.push_back(std::move(js));
    }
    jr["stages"] = std::move(stages);
    rule_list.push_back(std::move(jr));
  }
  j["rules"] = std::move(rule_list);
  return j;
}

void write_text_comparison(const PolicyComparison& c, std::ostream& out) {
  out << fmt::format("Policy change as of {} ({})\n", format_day(c.as_of), c.timezone)
      << fmt::format("  policy      {}  sha256 {}\n", c.file.string(), c.sha256)
      << fmt::format("  against old {}  sha256 {}\n", c.old_file.string(), c.old_sha256);
  if (!c.forecast.empty()) {
    out << fmt::format(
        "Forecast: at the end of each month from {} to {}, the data as they are now.\n",
        format_day(c.forecast.front()), format_day(c.forecast.back()));
  }
  std::map<RuleStatus, std::vector<const RuleComparison*>> by_status;
  for (const auto& r : c.rules) by_status[r.status].push_back(&r);
  auto n = [&](RuleStatus s) { return by_status.count(s) ? by_status[s].size() : 0; };
  out << fmt::format("\nRules: {} changed, {} added, {} removed, {} renamed, {} unchanged\n",
                     n(RuleStatus::changed), n(RuleStatus::added), n(RuleStatus::removed),
                     n(RuleStatus::renamed), n(RuleStatus::unchanged));
  for (const auto& r : c.rules) {
    switch (r.status) {
      case RuleStatus::added:
        out << fmt::format("  added     {} ({}.{}): the old policy has no such rule\n", r.rule,
                           r.store, r.table);
        break;
      case RuleStatus::removed:
        out << fmt::format("  removed   {} ({}.{}): the current policy has no such rule\n", r.rule,
                           r.store, r.table);
        break;
      case RuleStatus::renamed:
        out << fmt::format("  renamed   {} \u2192 {} ({}.{})\n", *r.old_name, r.rule, r.store,
                           r.table);
        break;
      case RuleStatus::changed:
        out << fmt::format("  changed   {}\n", r.rule);
        break;
      case RuleStatus::unchanged:
        break;
    }
    if (r.status == RuleStatus::unchanged) continue;
    for (const auto& what : r.selection_changes)
      out << fmt::format("              {} (selects other records)\n", what);
    for (const auto& what : r.other_changes) out << fmt::format("              {}\n", what);
    for (const auto& s : r.stages) {
      int number = (s.new_stage ? *s.new_stage : *s.old_stage).number;
      for (const auto& what : s.changes)
        out << fmt::format("              stage {}: {}\n", number, what);
    }
  }
  if (n(RuleStatus::unchanged) > 0) {
    std::vector<std::string> names;
    for (const auto* r : by_status[RuleStatus::unchanged]) names.push_back(r->rule);
    out << fmt::format("  unchanged {}\n", fmt::join(names, ", "));
  }

  for (const auto& r : c.rules) {
    if (r.status == RuleStatus::unchanged) continue;
    for (const auto& s : r.stages) {
      bool counted = false;
      for (const auto& p : s.points) counted = counted || p.old_count || p.new_count;
      if (s.changes.empty() && r.status != RuleStatus::renamed && !s.error) continue;
      out << "\n" << stage_title(r, s) << "\n";
      if (s.exact) {
        out << "  the same records in both versions: the difference is exact\n";
      } else if (!s.old_stage || !s.new_stage) {
        out << (s.new_stage ? "  only in the current policy: what it acts on\n"
                            : "  only in the old policy: what it acted on\n");
      } else {
        out << "  the two versions select different records: each one's count, no exact "
               "difference\n";
      }
      if (s.error) out << "  error: " << *s.error << "\n";
      if (!counted && !s.error) continue;
      out << fmt::format("  {:<10}  {:<10}  {:<10}  {:>12}  {:>12}  {:>10}  {:>13}\n", "as of",
                         "old cutoff", "new cutoff", "old acts on", "new acts on", "newly due",
                         "no longer due");
      for (const auto& p : s.points) {
        auto day = [](const std::optional<Day>& d) {
          return d ? format_day(*d) : std::string("-");
        };
        out << fmt::format("  {:<10}  {:<10}  {:<10}  {:>12}  {:>12}  {:>10}  {:>13}\n",
                           format_day(p.as_of), day(p.old_cutoff), day(p.new_cutoff),
                           count_text(p.old_count), count_text(p.new_count),
                           count_text(p.newly_due), count_text(p.no_longer_due));
      }
    }
  }
  out << "\n\"acts on\": records past the stage's period, not held (a later stage may be the one "
         "acting on them).\n"
         "\"newly due\": acted on by the current policy, kept by the old one; \"no longer due\": "
         "the reverse.\n";
}

}  // namespace retentiond
