#pragma once
// Typed actors across nodes, on top of Node/RemoteRef:
//
//   - publish_actor(node, "engine/tiny", ref) exports a local actor::ActorRef<Protocol>:
//     incoming frames are decoded into the Protocol alternative whose Codec<Alt>::type_id
//     matches and told to the actor; for an Askable alternative the runtime's ReplyTo is
//     filled in and its answer travels back to the asker.
//   - RemoteActorRef<Protocol> has the tell/ask API of actor::ActorRef<Protocol> for an actor
//     published on any node (this one included).
//
// Every alternative sent across needs a Codec (wire.hpp) with encode() and
//   static bool decode(WireReader&, Alt&)   // fields other than `reply`
// and so does the reply type R of each Askable alternative.
//
// Thread-safety: RemoteActorRef is cheap to copy and every member may be called from any
// thread; the exported handler runs on the node's I/O threads and only tells the actor.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <type_traits>
#include <variant>

#include "actor/actor_ref.hpp"
#include "actor/reply.hpp"
#include "remote/node.hpp"

namespace troupe::remote {

template <class T>
concept Decodable = requires(WireReader& r, T& m) {
  { Codec<T>::decode(r, m) } -> std::convertible_to<bool>;
};

namespace detail {

template <class T>
std::vector<std::byte> encode_vector(const T& m) {
  std::vector<std::byte> out(encoded_size(m));
  WireWriter w(out);
  Codec<T>::encode(m, w);
  return out;
}

template <class R>
Result<R> decode_reply(const Result<Reply>& r) {
  if (!r)
    return r.error();
  if (r->type != Codec<R>::type_id)
    return Error{Errc::internal, "unexpected reply type"};
  R out{};
  WireReader rd(r->payload);
  if (!Codec<R>::decode(rd, out) || !rd.at_end())
    return Error{Errc::internal, "malformed reply"};
  return out;
}

inline actor::SendStatus to_send_status(const Result<void>& r) {
  if (r)
    return actor::SendStatus::ok;
  return r.error().code == Errc::overloaded ? actor::SendStatus::mailbox_full
                                            : actor::SendStatus::stopped;
}

// Decodes `e` as `Alt` and tells it to `target`; asks get their answer sent back.
template <class Protocol, class Alt>
void forward(const actor::ActorRef<Protocol>& target, Envelope& e,
             const boost::asio::any_io_executor& ex) {
  Alt msg{};
  WireReader r(e.payload);
  if (!Codec<Alt>::decode(r, msg) || !r.at_end()) {
    e.reply.fail({Errc::invalid_request, "malformed message"});
    return;
  }
  if constexpr (actor::Askable<Alt>) {
    using R = actor::reply_type_t<Alt>;
    auto state = std::make_shared<actor::detail::AskState<R>>();
    // Internal actor API (see the report to the actor runtime's owner): a ReplyTo whose
    // answer runs our callback on the node's executor.
    state->set_handler(
        [reply = std::move(e.reply)](Result<R> out) mutable {
          if (out)
            reply.send(out.value());
          else
            reply.fail(out.error());
        },
        ex);
    msg.reply = actor::ReplyTo<R>(state);
  }
  target.tell(std::move(msg));  // a refused ask completes its ReplyTo with an error
}

}  // namespace detail

// Publishes `target` under `name` on `node` (see Node::publish). Returns the actor id.
template <class Protocol>
std::uint64_t publish_actor(Node& node, std::string name, actor::ActorRef<Protocol> target) {
  auto ex = boost::asio::any_io_executor(node.io_context().get_executor());
  return node.publish(std::move(name), [target = std::move(target), ex](Envelope& e) {
    bool matched = false;
    auto try_one = [&]<class Alt>(std::type_identity<Alt>) {
      if (matched || Codec<Alt>::type_id != e.type)
        return;
      matched = true;
      detail::forward<Protocol, Alt>(target, e, ex);
    };
    [&]<class... Alts>(std::type_identity<std::variant<Alts...>>) {
      (try_one(std::type_identity<Alts>{}), ...);
    }(std::type_identity<Protocol>{});
    if (!matched)
      e.reply.fail({Errc::invalid_request, "unknown message type"});
  });
}

template <class Protocol>
class RemoteActorRef {
 public:
  using protocol_type = Protocol;

  RemoteActorRef() = default;
  explicit RemoteActorRef(RemoteRef ref) : ref_(std::move(ref)) {}

  // As actor::ActorRef::tell: never blocks; mailbox_full when the link's send queue is full,
  // stopped when the node is gone, null_ref for an empty ref. Allocates nothing for a message
  // that encodes into at most kInlinePayload bytes.
  template <class Msg>
  requires std::is_constructible_v<Protocol, Msg&&> actor::SendStatus tell(Msg&& msg)
  const {
    if (!ref_)
      return actor::SendStatus::null_ref;
    using M = std::remove_cvref_t<Msg>;
    if constexpr (std::is_same_v<M, Protocol>) {
      return std::visit([&](const auto& m) { return detail::to_send_status(ref_.tell(m)); }, msg);
    } else {
      return detail::to_send_status(ref_.tell(msg));
    }
  }

  // As actor::ActorRef::ask, across the network: completes with the reply or an error
  // (timeout, unavailable when the node dies, the actor's own errors...). The reply member
  // of `msg` is ignored.
  template <actor::Askable Msg>
  requires std::is_constructible_v<Protocol, Msg&&>
      boost::asio::awaitable<Result<actor::reply_type_t<Msg>>> ask(
          Msg msg, std::chrono::steady_clock::duration timeout = actor::kNoTimeout)
  const {
    using R = actor::reply_type_t<Msg>;
    if (!ref_)
      co_return actor::to_error(actor::SendStatus::null_ref);
    auto bytes = detail::encode_vector(msg);
    auto r = co_await ref_.async_ask_raw(Codec<Msg>::type_id, bytes, timeout,
                                         boost::asio::use_awaitable);
    co_return detail::decode_reply<R>(r);
  }

  // Blocking ask for tests and tools; never call it from one of the node's I/O threads.
  template <actor::Askable Msg>
  requires std::is_constructible_v<Protocol, Msg&&> Result<actor::reply_type_t<Msg>> ask_blocking(
      Msg msg, std::chrono::steady_clock::duration timeout)
  const {
    using R = actor::reply_type_t<Msg>;
    if (!ref_)
      return actor::to_error(actor::SendStatus::null_ref);
    auto bytes = detail::encode_vector(msg);
    auto fut = ref_.async_ask_raw(Codec<Msg>::type_id, bytes, timeout, boost::asio::use_future);
    return detail::decode_reply<R>(fut.get());
  }

  const RemoteRef& ref() const noexcept { return ref_; }
  explicit operator bool() const noexcept { return static_cast<bool>(ref_); }

 private:
  RemoteRef ref_;
};

// The typed ref for `name`, or Errc::not_found.
template <class Protocol>
Result<RemoteActorRef<Protocol>> lookup_actor(const Node& node, std::string_view name) {
  auto r = node.lookup(name);
  if (!r)
    return r.error();
  return RemoteActorRef<Protocol>(std::move(r.value()));
}

}  // namespace troupe::remote
