#include "cli/duration_option.hpp"

#include <utility>

namespace troupe::cli {

CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::function<void(std::chrono::nanoseconds)> set,
                                 std::chrono::nanoseconds fallback, util::DurationUnit bare,
                                 const std::string& help) {
  auto* opt = app.add_option_function<std::string>(
      name,
      [name, bare, set = std::move(set)](const std::string& text) {
        auto d = util::parse_duration(text, bare);
        if (!d)
          throw CLI::ValidationError(name, d.error().message);
        set(d.value());
      },
      help);
  opt->type_name("DURATION");
  opt->default_str(util::format_duration(fallback));
  return opt;
}

}  // namespace troupe::cli
