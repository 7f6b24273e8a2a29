// Time settings of the policy (busy_timeout): "500ms", "5s", "2 min".
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace retentiond {

// "N ms", "N s" or "N min", with or without the space; N a positive whole
// number. nullopt for anything else (zero, negative, a fraction, no unit).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace retentiond
