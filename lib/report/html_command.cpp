#include "report/html_command.hpp"

#include <date/date.h>

#include <chrono>
#include <ostream>

#include "time/anchor.hpp"
#include "report/html_report.hpp"

namespace retentiond {

int write_html_for(const Policy& policy, const Report& report,
                   const std::vector<std::string>& rules, Io& io) {
  HtmlReportOptions options;
  options.generated_at =
      date::format("%FT%TZ", std::chrono::floor<std::chrono::seconds>(io.clock.now()));
  int code = 0;
  Forecast forecast;
  if (auto as_of = parse_date_text(report.as_of)) {
    forecast.as_of = *as_of;
    auto computed = forecast_expiries(policy, *as_of, io.clock, ForecastOptions{12, rules});
    if (computed) {
      forecast = std::move(*computed);
    } else {
      io.log.error("the report's forecast could not be computed: {}", computed.error().message);
      forecast.errors.push_back(computed.error().message);
      code = static_cast<int>(computed.error().code);
    }
    for (const auto& error : forecast.errors) io.log.warning("forecast: {}", error);
  }
  write_html_report(report, policy, forecast, io.out, options);
  io.out.flush();
  return code;
}

}  // namespace retentiond
