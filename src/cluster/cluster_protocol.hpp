#pragma once
// The messages between a gateway and a worker, and their wire codecs (remote/wire.hpp).
//
//   gateway -> worker "engine/<model>":
//     GenerateRequest   tell: start generating; stream the events to `reply_to`
//     CancelRequest     tell: the client went away; drop the stream (frees the sequence)
//     TokenizeRequest   ask:  -> TokenizeReply, or a failed reply (Error)
//     DetokenizeRequest ask:  -> DetokenizeReply, or a failed reply (Error)
//     ApplyTemplateRequest ask: -> ApplyTemplateReply (the rendered prompt), or a failed reply
//     EmbeddingRequest  tell: compute an embedding (Task::embedding set); stream to `reply_to`
//     PropsRequest      ask:  -> PropsReply (the model's GET /props), or a failed reply
//   worker -> gateway stream sink (reply_to):
//     StreamUpdate      tell: one event of request `request_id`, in order; the last one is
//                       Finished or Failed
//     EmbeddingResult   tell: the Finished (usage and vector) that ends an embedding request;
//                       before it: StreamUpdate Started, or instead of it: StreamUpdate Failed
//
// Request ids are chosen by the gateway and unique per gateway node; a worker keys its
// streams by (gateway node, request id), so several gateways may share workers.
//
// Versioning: every type id carries the protocol version in its low byte (kProtocolVersion);
// a node that receives an unknown type id ignores the message and logs it once, so mixed
// versions fail loudly instead of misreading bytes.
//
// Thread-safety: plain values and pure functions.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/backend.hpp"
#include "engine/events.hpp"
#include "engine/task.hpp"
#include "remote/registry.hpp"
#include "remote/wire.hpp"
#include "util/result.hpp"

namespace troupe::cluster {

// 2: chat messages with tool calls, chat options, parsed deltas; sampling grammars.
// 3: llama-server's samplers (typical_p, top_n_sigma, dynatemp, DRY, XTC, mirostat), text
//    logit biases; temperature, top_k, top_p, min_p, repeat_penalty and max_tokens may be
//    unset (the worker's defaults apply); a grammar's generation-prompt prefill and a
//    conversation's JSON schema; ApplyTemplateRequest.
// 4: EmbeddingRequest and EmbeddingResult (embeddings and rerank through the gateway).
// 5: a Task's prediction (OpenAI's Predicted Outputs) and the usage's accepted and rejected
//    prediction tokens.
// 6: a Task's fill-in-the-middle parameters (InfillParams); Started's truncated; the stop
//    parameters' n_indent and max_predict_ms; the sampling parameters' sampler order.
// 7: PropsRequest and PropsReply (llama-server's GET /props through the gateway).
// 8: a Task's LoRA scales (llama-server's per-request `lora`).
// 9: an embedding's normalisation (llama-server's `embd_normalize`, every value) and whether
//    it may be answered per token; EmbeddingResult's rows (pooling none: one per token);
//    PropsReply's capabilities (generates, tools, thinking, infill) for Ollama's /api/show.
// 10: a Task's n_cache_reuse (llama-server's chunk reuse).
// 11: a Task's reasoning budget and its message.
inline constexpr std::uint32_t kProtocolVersion = 11;
inline constexpr std::uint32_t type_id(std::uint32_t n) {
  return 0x434c0000u | (n << 8) | kProtocolVersion;  // "CL", message, version
}

// Registry name under which a worker publishes its engine for `model`.
std::string engine_name(std::string_view model);
inline constexpr std::string_view kEnginePrefix = "engine/";

// Metadata keys a worker gossips (values are decimal strings unless noted).
namespace meta {
inline constexpr const char* role = "role";    // "worker" | "gateway"
inline constexpr const char* model = "model";  // the model id
inline constexpr const char* n_ctx = "n_ctx";  // context per sequence
inline constexpr const char* n_vocab = "n_vocab";
inline constexpr const char* capacity = "capacity";  // sequences decoded together
// "<running> <queued> <kv_usage>": gauges in one entry, so one gossip update carries them.
inline constexpr const char* load = "load";
inline constexpr const char* state = "state";  // "loading" | "ready" | "failed"
// A worker that loads models on demand (troupe worker --models-dir): the ids of the models it
// has loaded now, comma-separated ("" when none). Absent: every published model is loaded.
inline constexpr const char* loaded = "loaded";
}  // namespace meta

struct GenerateRequest {
  std::uint64_t request_id = 0;
  remote::ActorAddress reply_to;  // the gateway's stream sink
  engine::Task task;
};

struct CancelRequest {
  std::uint64_t request_id = 0;
};

struct StreamUpdate {
  std::uint64_t request_id = 0;
  engine::StreamEvent event;
};

struct TokenizeRequest {
  std::string model;
  std::string text;
  bool add_special = true;
  bool parse_special = false;
};

struct TokenizeReply {
  std::vector<engine::Token> tokens;
};

struct DetokenizeRequest {
  std::string model;
  std::vector<engine::Token> tokens;
};

struct DetokenizeReply {
  std::string text;
};

struct ApplyTemplateRequest {
  engine::Task task;  // its messages and chat options
};

struct ApplyTemplateReply {
  std::string prompt;
};

struct PropsRequest {
  std::string model;
};

struct PropsReply {
  engine::ModelProps props;
};

// An embedding request: GenerateRequest's fields, with `task.embedding` set (carried here, so
// GenerateRequest's encoding did not change).
struct EmbeddingRequest {
  std::uint64_t request_id = 0;
  remote::ActorAddress reply_to;
  engine::Task task;
};

struct EmbeddingResult {
  std::uint64_t request_id = 0;
  engine::Finished finished;  // its usage and embedding
};

// Decodes a message of type T from a payload; Errc::invalid_request when malformed or when
// bytes are left over.
template <class T>
Result<T> decode_message(std::span<const std::byte> payload) {
  remote::WireReader r(payload);
  T m;
  if (!remote::Codec<T>::decode(r, m) || !r.at_end())
    return Error{Errc::invalid_request, "malformed cluster message"};
  return m;
}

// Encodes a message into a new buffer.
template <class T>
std::vector<std::byte> encode_message(const T& m) {
  std::vector<std::byte> out(remote::encoded_size(m));
  remote::WireWriter w(out);
  remote::Codec<T>::encode(m, w);
  return out;
}

// Building blocks, exposed for the codecs below and their tests.
void encode_task(const engine::Task& t, remote::WireWriter& w);
bool decode_task(remote::WireReader& r, engine::Task& t);
void encode_event(const engine::StreamEvent& e, remote::WireWriter& w);
bool decode_event(remote::WireReader& r, engine::StreamEvent& e);
void encode_error(const Error& e, remote::WireWriter& w);
bool decode_error(remote::WireReader& r, Error& e);
void encode_tokens(const std::vector<engine::Token>& t, remote::WireWriter& w);
bool decode_tokens(remote::WireReader& r, std::vector<engine::Token>& t);
// Task::embedding (absent: one zero byte) and an embedding request's Finished.
void encode_embedding_params(const std::optional<engine::EmbeddingParams>& p,
                             remote::WireWriter& w);
bool decode_embedding_params(remote::WireReader& r, std::optional<engine::EmbeddingParams>& p);
void encode_embedding_finished(const engine::Finished& f, remote::WireWriter& w);
bool decode_embedding_finished(remote::WireReader& r, engine::Finished& f);
void encode_props(const engine::ModelProps& p, remote::WireWriter& w);
bool decode_props(remote::WireReader& r, engine::ModelProps& p);

}  // namespace troupe::cluster

namespace troupe::remote {

template <>
struct Codec<cluster::GenerateRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(1);
  static void encode(const cluster::GenerateRequest& m, WireWriter& w) {
    w.u64(m.request_id);
    w.u64(m.reply_to.node);
    w.str(m.reply_to.address);
    w.u64(m.reply_to.actor);
    cluster::encode_task(m.task, w);
  }
  static bool decode(WireReader& r, cluster::GenerateRequest& m) {
    m.request_id = r.u64();
    m.reply_to.node = r.u64();
    m.reply_to.address = r.str();
    m.reply_to.actor = r.u64();
    return cluster::decode_task(r, m.task) && r.ok();
  }
};

template <>
struct Codec<cluster::CancelRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(2);
  static void encode(const cluster::CancelRequest& m, WireWriter& w) { w.u64(m.request_id); }
  static bool decode(WireReader& r, cluster::CancelRequest& m) {
    m.request_id = r.u64();
    return r.ok();
  }
};

template <>
struct Codec<cluster::StreamUpdate> {
  static constexpr std::uint32_t type_id = cluster::type_id(3);
  static void encode(const cluster::StreamUpdate& m, WireWriter& w) {
    w.u64(m.request_id);
    cluster::encode_event(m.event, w);
  }
  static bool decode(WireReader& r, cluster::StreamUpdate& m) {
    m.request_id = r.u64();
    return cluster::decode_event(r, m.event) && r.ok();
  }
};

template <>
struct Codec<cluster::TokenizeRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(4);
  static void encode(const cluster::TokenizeRequest& m, WireWriter& w) {
    w.str(m.model);
    w.str(m.text);
    w.u8(m.add_special ? 1 : 0);
    w.u8(m.parse_special ? 1 : 0);
  }
  static bool decode(WireReader& r, cluster::TokenizeRequest& m) {
    m.model = r.str();
    m.text = r.str();
    m.add_special = r.u8() != 0;
    m.parse_special = r.u8() != 0;
    return r.ok();
  }
};

template <>
struct Codec<cluster::TokenizeReply> {
  static constexpr std::uint32_t type_id = cluster::type_id(5);
  static void encode(const cluster::TokenizeReply& m, WireWriter& w) {
    cluster::encode_tokens(m.tokens, w);
  }
  static bool decode(WireReader& r, cluster::TokenizeReply& m) {
    return cluster::decode_tokens(r, m.tokens);
  }
};

template <>
struct Codec<cluster::DetokenizeRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(6);
  static void encode(const cluster::DetokenizeRequest& m, WireWriter& w) {
    w.str(m.model);
    cluster::encode_tokens(m.tokens, w);
  }
  static bool decode(WireReader& r, cluster::DetokenizeRequest& m) {
    m.model = r.str();
    return cluster::decode_tokens(r, m.tokens);
  }
};

template <>
struct Codec<cluster::DetokenizeReply> {
  static constexpr std::uint32_t type_id = cluster::type_id(7);
  static void encode(const cluster::DetokenizeReply& m, WireWriter& w) { w.str(m.text); }
  static bool decode(WireReader& r, cluster::DetokenizeReply& m) {
    m.text = r.str();
    return r.ok();
  }
};

template <>
struct Codec<cluster::ApplyTemplateRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(8);
  static void encode(const cluster::ApplyTemplateRequest& m, WireWriter& w) {
    cluster::encode_task(m.task, w);
  }
  static bool decode(WireReader& r, cluster::ApplyTemplateRequest& m) {
    return cluster::decode_task(r, m.task);
  }
};

template <>
struct Codec<cluster::ApplyTemplateReply> {
  static constexpr std::uint32_t type_id = cluster::type_id(9);
  static void encode(const cluster::ApplyTemplateReply& m, WireWriter& w) { w.str(m.prompt); }
  static bool decode(WireReader& r, cluster::ApplyTemplateReply& m) {
    m.prompt = r.str();
    return r.ok();
  }
};

// Type ids 10 and 11: new in this protocol version's numbering (not yet bumped).
template <>
struct Codec<cluster::EmbeddingRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(10);
  static void encode(const cluster::EmbeddingRequest& m, WireWriter& w) {
    w.u64(m.request_id);
    w.u64(m.reply_to.node);
    w.str(m.reply_to.address);
    w.u64(m.reply_to.actor);
    cluster::encode_task(m.task, w);
    cluster::encode_embedding_params(m.task.embedding, w);
  }
  static bool decode(WireReader& r, cluster::EmbeddingRequest& m) {
    m.request_id = r.u64();
    m.reply_to.node = r.u64();
    m.reply_to.address = r.str();
    m.reply_to.actor = r.u64();
    return cluster::decode_task(r, m.task) &&
           cluster::decode_embedding_params(r, m.task.embedding) && m.task.embedding && r.ok();
  }
};

template <>
struct Codec<cluster::EmbeddingResult> {
  static constexpr std::uint32_t type_id = cluster::type_id(11);
  static void encode(const cluster::EmbeddingResult& m, WireWriter& w) {
    w.u64(m.request_id);
    cluster::encode_embedding_finished(m.finished, w);
  }
  static bool decode(WireReader& r, cluster::EmbeddingResult& m) {
    m.request_id = r.u64();
    return cluster::decode_embedding_finished(r, m.finished) && r.ok();
  }
};

template <>
struct Codec<cluster::PropsRequest> {
  static constexpr std::uint32_t type_id = cluster::type_id(12);
  static void encode(const cluster::PropsRequest& m, WireWriter& w) { w.str(m.model); }
  static bool decode(WireReader& r, cluster::PropsRequest& m) {
    m.model = r.str();
    return r.ok();
  }
};

template <>
struct Codec<cluster::PropsReply> {
  static constexpr std::uint32_t type_id = cluster::type_id(13);
  static void encode(const cluster::PropsReply& m, WireWriter& w) {
    cluster::encode_props(m.props, w);
  }
  static bool decode(WireReader& r, cluster::PropsReply& m) {
    return cluster::decode_props(r, m.props);
  }
};

}  // namespace troupe::remote
