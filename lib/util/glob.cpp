#include "util/glob.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace retentiond {
namespace {

// A byte that is not valid UTF-8 stands for itself, above every code point.
constexpr char32_t kRawByte = 0x110000;

// The next character of `s` at `i` (advanced past it).
char32_t next_char(std::string_view s, std::size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xe  ? 3
                    : (c >> 3) == 0x1e ? 4
                                       : 0;
  if (len == 1 || len == 0 || i + len > s.size()) {
    ++i;
    return len == 1 ? c : kRawByte + c;
  }
  char32_t cp = c & (0x7f >> len);
  for (std::size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 0x2) {
      ++i;
      return kRawByte + c;
    }
    cp = (cp << 6) | (b & 0x3f);
  }
  i += len;
  return cp;
}

std::u32string decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) out.push_back(next_char(s, i));
  return out;
}

std::string encode(char32_t c) {
  std::string out;
  if (c >= kRawByte) {
    out += static_cast<char>(c - kRawByte);
  } else if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xc0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xe0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (c & 0x3f));
  }
  return out;
}

constexpr std::string_view kAccepted =
    "accepted: a glob relative to the store's root, such as \"*/identity-*.pdf\" or "
    "\"**/*.pdf\" (* ? [...] within a folder name, ** for any folders)";

void insert_sorted(Glob::State& s, std::uint32_t v) {
  auto it = std::lower_bound(s.begin(), s.end(), v);
  if (it == s.end() || *it != v) s.insert(it, v);
}

}  // namespace

std::expected<Glob, std::string> Glob::compile(std::string_view pattern) {
  auto refuse = [&](std::string_view why) {
    return std::unexpected(fmt::format("pattern '{}' {}; {}", pattern, why, kAccepted));
  };
  if (pattern.empty()) return refuse("is empty");
  if (pattern.front() == '/') return refuse("is absolute");
  if (pattern.find('\0') != std::string_view::npos) return refuse("holds a NUL byte");
  Glob g;
  g.text_ = pattern;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = pattern.find('/', start);
    std::string_view text = pattern.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (text.empty()) return refuse("has an empty folder name ('//' or a trailing '/')");
    if (text == "..") return refuse("has a '..' component: it would reach outside the root");
    if (text == ".") return refuse("has a '.' component");
    Component c;
    if (text == "**") {
      c.globstar = true;
    } else {
      std::u32string chars = decode(text);
      bool wild = false;
      for (std::size_t i = 0; i < chars.size(); ++i) {
        char32_t ch = chars[i];
        Token t;
        if (ch == U'\\') {
          if (++i == chars.size()) return refuse("ends a name with a lone '\\'");
          t.c = chars[i];
        } else if (ch == U'*') {
          wild = true;
          if (!c.tokens.empty() && c.tokens.back().kind == Token::Kind::star) continue;
          t.kind = Token::Kind::star;
        } else if (ch == U'?') {
          wild = true;
          t.kind = Token::Kind::any;
        } else if (ch == U'[') {
          wild = true;
          Set set;
          std::size_t j = i + 1;
          if (j < chars.size() && (chars[j] == U'!' || chars[j] == U'^')) {
            set.negated = true;
            ++j;
          }
          bool closed = false;
          for (bool first = true; j < chars.size(); first = false) {
            char32_t lo = chars[j];
            if (lo == U']' && !first) {
              closed = true;
              break;
            }
            if (lo == U'\\' && j + 1 < chars.size()) lo = chars[++j];
            ++j;
            char32_t hi = lo;
            if (j + 1 < chars.size() && chars[j] == U'-' && chars[j + 1] != U']') {
              hi = chars[j + 1];
              j += 2;
              if (hi == U'\\' && j < chars.size()) hi = chars[j++];
              if (hi < lo)
                return refuse(fmt::format("has an empty range '{}-{}'", encode(lo), encode(hi)));
            }
            set.ranges.emplace_back(lo, hi);
          }
          if (!closed) return refuse("has a '[' without its ']'");
          t.kind = Token::Kind::set;
          t.set = g.sets_.size();
          g.sets_.push_back(std::move(set));
          i = j;
        } else {
          t.c = ch;
        }
        c.tokens.push_back(t);
      }
      if (!wild) {
        c.literal = true;
        for (const auto& t : c.tokens) c.text += encode(t.c);
      }
    }
    g.components_.push_back(std::move(c));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return g;
}

bool Glob::component_matches(const Component& c, std::string_view name) const {
  if (c.globstar) return true;
  if (c.literal) return c.text == name;
  // An ASCII name is its own code points: no decoding, no allocation.
  bool ascii = std::all_of(name.begin(), name.end(),
                           [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
  if (ascii) return tokens_match(c, name);
  return tokens_match(c, std::u32string_view(decode(name)));
}

template <class Chars>
bool Glob::tokens_match(const Component& c, Chars n) const {
  const auto& tokens = c.tokens;
  auto single = [&](const Token& t, char32_t ch) {
    switch (t.kind) {
      case Token::Kind::literal:
        return t.c == ch;
      case Token::Kind::any:
        return true;
      case Token::Kind::set: {
        const Set& s = sets_[t.set];
        bool in = std::any_of(s.ranges.begin(), s.ranges.end(),
                              [&](const auto& r) { return r.first <= ch && ch <= r.second; });
        return in != s.negated;
      }
      case Token::Kind::star:
        return false;
    }
    return false;
  };
  // Backtracking over the last star only: linear in practice, O(n*m) at worst.
  std::size_t p = 0, i = 0;
  std::size_t star = std::string::npos, star_i = 0;
  while (i < n.size()) {
    if (p < tokens.size() && tokens[p].kind == Token::Kind::star) {
      star = p++;
      star_i = i;
    } else if (p < tokens.size() && single(tokens[p], static_cast<char32_t>(n[i]))) {
      ++p;
      ++i;
    } else if (star != std::string::npos) {
      p = star + 1;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (p < tokens.size() && tokens[p].kind == Token::Kind::star) ++p;
  return p == tokens.size();
}

void Glob::close(State& state) const {
  // A "**" may match no folder: the component after it is open too (a last
  // "**" matches files by itself). i + 1 sorts after position k, so the loop
  // reaches it.
  for (std::size_t k = 0; k < state.size(); ++k) {
    std::uint32_t i = state[k];
    if (i + 1 < components_.size() && components_[i].globstar) insert_sorted(state, i + 1);
  }
}

Glob::State Glob::start() const {
  State s{0};
  close(s);
  return s;
}

Glob::State Glob::enter(const State& state, std::string_view name) const {
  State next;
  for (std::uint32_t i : state) {
    if (i >= components_.size()) continue;
    const Component& c = components_[i];
    if (c.globstar) {
      insert_sorted(next, i);
    } else if (i + 1 < components_.size() && component_matches(c, name)) {
      insert_sorted(next, i + 1);
    }
  }
  close(next);
  return next;
}

bool Glob::may_descend(const State& state) const {
  return std::any_of(state.begin(), state.end(), [&](std::uint32_t i) {
    return i < components_.size() && (components_[i].globstar || i + 1 < components_.size());
  });
}

bool Glob::matches_file(const State& state, std::string_view name) const {
  return std::any_of(state.begin(), state.end(), [&](std::uint32_t i) {
    return i + 1 == components_.size() && component_matches(components_[i], name);
  });
}

bool Glob::matches(std::string_view path) const {
  State s = start();
  std::size_t start = 0;
  while (true) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) return matches_file(s, path.substr(start));
    std::string_view name = path.substr(start, slash - start);
    if (name.empty()) return false;
    s = enter(s, name);
    if (s.empty()) return false;
    start = slash + 1;
  }
}

bool Glob::is_literal() const {
  return std::all_of(components_.begin(), components_.end(),
                     [](const Component& c) { return c.literal; });
}

}  // namespace retentiond
