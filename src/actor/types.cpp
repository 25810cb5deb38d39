#include "actor/types.hpp"

namespace troupe::actor {

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
