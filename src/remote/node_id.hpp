#pragma once
// NodeId: a node's identity in the cluster, random and nonzero, drawn when the node starts (a
// restarted node is a new node). Handshakes carry it, member records and actor addresses
// name nodes by it.
//
// Thread-safety: a plain value.

#include <cstdint>

namespace troupe::remote {

using NodeId = std::uint64_t;

}  // namespace troupe::remote
