#include "util/error.hpp"

namespace troupe {

std::string_view errc_name(Errc e) noexcept {
  switch (e) {
    case Errc::invalid_request:
      return "invalid_request";
    case Errc::prompt_too_long:
      return "prompt_too_long";
    case Errc::unauthorized:
      return "unauthorized";
    case Errc::not_found:
      return "not_found";
    case Errc::overloaded:
      return "overloaded";
    case Errc::unavailable:
      return "unavailable";
    case Errc::cancelled:
      return "cancelled";
    case Errc::timeout:
      return "timeout";
    case Errc::engine_failed:
      return "engine_failed";
    case Errc::internal:
      return "internal";
  }
  return "unknown";
}

}  // namespace troupe
