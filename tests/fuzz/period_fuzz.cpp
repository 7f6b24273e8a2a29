// libFuzzer target: the period parser, and the calendar on what it accepts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "time/calendar.hpp"
#include "time/period.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto period = retentiond::parse_period(text);
  if (!period) return 0;
  if (period->years < 0 || period->months < 0 || period->days < 0) std::abort();
  if (*period == retentiond::Period{}) std::abort();
  // What the parser accepts, the calendar must handle: the cutoff is past
  // its period and the day after it is not.
  using namespace date;
  retentiond::Day as_of = sys_days{2026_y / November / 27};
  retentiond::Day cutoff = retentiond::cutoff_for(as_of, *period);
  if (retentiond::expiry_of(cutoff, *period) > as_of) std::abort();
  if (retentiond::expiry_of(cutoff + days{1}, *period) <= as_of) std::abort();
  return 0;
}
