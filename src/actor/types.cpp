#include "actor/types.hpp"

namespace troupe::actor {

std::string_view send_status_name(SendStatus s) noexcept {
  switch (s) {
    case SendStatus::ok:
      return "ok";
    case SendStatus::stopped:
      return "stopped";
    case SendStatus::mailbox_full:
      return "mailbox_full";
    case SendStatus::null_ref:
      return "null_ref";
  }
  return "unknown";
}

Error to_error(SendStatus s) {
  switch (s) {
    case SendStatus::mailbox_full:
      return Error{Errc::overloaded, "actor mailbox full"};
    case SendStatus::null_ref:
      return Error{Errc::unavailable, "empty actor ref"};
    case SendStatus::stopped:
    case SendStatus::ok:
      break;
  }
  return Error{Errc::unavailable, "actor stopped"};
}

}  // namespace troupe::actor
