#pragma once
// Overloaded: one handler set for a protocol, visited with std::visit. Every alternative of
// the variant must match one of the lambdas, so a message type added to a protocol without a
// handler is a compile error instead of a message dropped at run time:
//
//   std::visit(Overloaded{[&](Add& a) { ... }, [&](Get& g) { ... }}, msg);
//
// Prefer parameters of the exact message types over a generic `auto` catch-all: a catch-all
// gives the exhaustiveness back.

namespace troupe::actor {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace troupe::actor
