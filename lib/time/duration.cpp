#include "time/duration.hpp"

#include <cctype>
#include <charconv>

namespace retentiond {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  long long n = 0;
  std::from_chars(text.data(), text.data() + digits, n);
  std::string_view unit = text.substr(digits);
  if (unit.starts_with(' ')) unit.remove_prefix(1);
  if (n <= 0) return std::nullopt;
  if (unit == "ms") return std::chrono::milliseconds{n};
  if (unit == "s") return std::chrono::seconds{n};
  if (unit == "min") return std::chrono::minutes{n};
  return std::nullopt;
}

}  // namespace retentiond
