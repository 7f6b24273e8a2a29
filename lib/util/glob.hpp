// Shell-style globs over paths relative to a folder, for files stores and
// their hold lists: `*` (any characters but '/'), `?` (one character),
// `[...]` (one character of a set; `!` or `^` negates it; `a-z` ranges) and
// `\x` (x itself), within one path component; a component that is exactly
// `**` matches any number of folders, none included, and as the last one
// every file below. Case-sensitive; `*` and `?` match a leading dot, as
// `find -name` does. Characters are UTF-8 code points (a byte that is not
// valid UTF-8 is one character of its own).
//
// A walk matches incrementally: start() is the state at the root, enter()
// the state in a subfolder, and a folder whose state is empty, or cannot
// descend, is never read.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace retentiond {

class Glob {
 public:
  // The pattern compiled, or what is wrong with it and what is accepted. A
  // pattern is relative: not empty, not starting with '/', without empty,
  // "." or ".." components, every '[' closed.
  static std::expected<Glob, std::string> compile(std::string_view pattern);

  // Positions in the pattern's components that the folders walked so far
  // leave open; sorted, without duplicates. Empty: nothing below can match.
  using State = std::vector<std::uint32_t>;

  State start() const;
  // The state in subfolder `name` of a folder whose state is `state`.
  State enter(const State& state, std::string_view name) const;
  // Whether a folder in `state` can hold matching files in subfolders.
  bool may_descend(const State& state) const;
  // Whether a file `name` in a folder in `state` matches.
  bool matches_file(const State& state, std::string_view name) const;

  // Whether the relative path (components separated by '/') matches.
  bool matches(std::string_view path) const;
  // Whether the pattern has no wildcard at all: it names one path.
  bool is_literal() const;

  const std::string& text() const { return text_; }

 private:
  struct Set {
    bool negated = false;
    std::vector<std::pair<char32_t, char32_t>> ranges;  // inclusive
  };
  struct Token {
    enum class Kind { literal, any, star, set } kind = Kind::literal;
    char32_t c = 0;  // literal
    std::size_t set = 0;
  };
  struct Component {
    bool globstar = false;  // exactly "**"
    bool literal = false;   // no wildcard: compared as bytes
    std::string text;       // the unescaped text when literal
    std::vector<Token> tokens;
  };

  bool component_matches(const Component& c, std::string_view name) const;
  template <class Chars>
  bool tokens_match(const Component& c, Chars name) const;
  void close(State& state) const;

  std::string text_;
  std::vector<Component> components_;
  std::vector<Set> sets_;
};

}  // namespace retentiond
