#pragma once
// An engine's messages: its whole interface (the BatchEngine's, and the simulated engine's).
// Every admission gets exactly one SequenceReleased(ticket) told to the engine's admission
// actor (admission_protocol.hpp), whether the sequence finished, was released, or could not
// start, so the admission can count free slots; an admission waiting for the busy slot it
// named is told as SequenceParked first.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "actor/reply.hpp"
#include "engine/first_byte_index.hpp"
#include "engine/llama_handles.hpp"
#include "engine/pooling.hpp"
#include "engine/reasoning_block.hpp"
#include "engine/sequence_protocol.hpp"
#include "engine/task.hpp"
#include "util/error.hpp"

namespace troupe::engine {

// Where the engine sends a sequence's messages. Called on the engine thread, so it must be
// quick and must not block: a post to the actor's executor.
using SequenceSink = std::function<void(SequenceMessage)>;

// Start a sequence on the lowest free slot, reusing the longest cached prefix of `prompt`
// found in any slot. Precondition: the sender knows a slot is free (it counts releases);
// 0 < prompt.size() < the per-sequence context; when `sampling.grammar` is set, `grammar` is
// the sampler make_grammar_sampler() built from it (off the engine thread: it parses GBNF);
// when uses_dry(sampling), `dry` is make_dry_sampler()'s (off the engine thread too: it scans
// the vocabulary).
struct AdmitSequence {
  std::uint64_t ticket = 0;  // the sender's id for the sequence, unique among live ones
  std::vector<Token> prompt;
  SamplingParams sampling;
  SamplerPtr grammar;  // owned; null: unconstrained
  // first_byte_check() of the grammar's spec: how the engine may narrow its checks by the
  // model's FirstByteIndex.
  FirstByteCheck grammar_first_bytes = FirstByteCheck::off;
  SamplerPtr dry;  // owned; null: no DRY
  // max_tokens, min_tokens and ignore_eos end the sequence in the engine (sequence_end());
  // the stop strings are the SequenceActor's.
  StopParams stop;
  SequenceSink sink;
  // An embedding sequence (the context serves embeddings: BatchEngineConfig::embeddings):
  // its whole prompt goes into one decode (precondition: at most embed_limit() tokens), then
  // the sink gets SequenceEmbedded with the pooled vector and the slot is freed; nothing is
  // sampled and no prefix is reused. `norm`: how the pooled vector is scaled
  // (normalize_embedding); with pooling none the answer is every token's vector, unscaled.
  bool embed = false;
  std::int32_t norm = embd_norm_euclidean;
  // Task::prediction's tokens (no BOS, special tokens as text): drafted from where the answer
  // is found in them. Empty: none.
  std::vector<Token> prediction;
  // The scale of each of the model's LoRA adapters (LlamaModel::lora_adapters(), in order)
  // for this sequence; empty when the model has none. Only sequences with equal scales share
  // a step or a cached prefix.
  std::vector<float> lora;
  // The slot to run in (Task::id_slot, 0..n_parallel-1): while another sequence holds it the
  // admission waits in the engine (holding no admission place: SequenceParked) and starts when
  // that one ends.
  // -1: the engine's choice.
  std::int32_t slot = -1;
  // Chunk reuse (engine/cache_reuse.hpp; Task::n_cache_reuse or the server's --cache-reuse):
  // after the prefix a free slot's cells share with the prompt, runs of at least this many of
  // its cached tokens that the prompt has further on, in order, are moved into place instead
  // of computed (where the model's memory can shift cells). 0: only the prefix.
  std::int32_t cache_reuse = 0;
  // The template's reasoning block with Task::reasoning_budget (null: none the sequence needs
  // to know): the sequence's Sampler gets it.
  std::unique_ptr<ReasoningBlock> reasoning;
  // The grammar is lazy and waits outside the reasoning block (Sampler::set_reasoning).
  bool reasoning_gates_grammar = false;
};

// Stop a sequence now (a stop string matched or the request was cancelled). With
// `drop_cache` its KV cells are freed before the next step; otherwise they stay for prefix
// reuse by a later request. Unknown or finished tickets are ignored.
struct ReleaseSequence {
  std::uint64_t ticket = 0;
  bool drop_cache = false;
};

// A view of the engine's slots, for tests and diagnostics.
struct EngineSnapshot {
  struct SlotView {
    bool busy = false;
    std::uint64_t ticket = 0;
    std::int32_t n_past = 0;       // tokens the engine believes are cached for this slot
    std::int32_t kv_pos_max = -1;  // llama_memory_seq_pos_max: -1 when the slot holds no cells
    // While busy: sampling its answer (else taking its prompt in), an embedding input, its
    // prompt's tokens, of them those found cached at admission, tokens sampled, and its
    // max_tokens (-1: none but the context).
    bool generating = false;
    bool embed = false;
    std::int32_t n_prompt = 0;
    std::int32_t cached = 0;
    std::int32_t generated = 0;
    std::int32_t max_tokens = -1;
  };
  std::vector<SlotView> slots;
  bool failed = false;
};

// Replies with a snapshot (an ask: ActorRef::ask or ask_blocking).
struct InspectEngine {
  actor::ReplyTo<EngineSnapshot> reply;
};

// Makes the engine fail as after a fatal decode error (tests, supervisors).
struct FailEngine {
  Error error;
};

// llama-server's POST /slots/ID?action=save|restore|erase (`--slot-save-path`): a slot's cached
// cells written to a file, read back from one, or dropped. The file is llama.cpp's sequence
// state file (llama_state_seq_save_file: the cached tokens, then the cells), so a state saved
// by llama-server from the same model restores here and the other way round. A busy slot's
// action waits until its request is done (llama-server defers it too), and runs before any
// later admission can take the slot. Restore first stores what the slot holds in host memory
// (as a prompt displacing it would); erase does not. Errors (the ask fails): invalid_request
// for a slot id out of range, a file llama.cpp refuses (another model's, not a state file, no
// room in the KV cache) or a model that keeps no KV cache; internal when a save cannot be
// written.
// (SlotActionKind, SlotActionDone: engine/task.hpp.)
struct SlotAction {
  SlotActionKind kind = SlotActionKind::erase;
  std::int32_t slot = 0;
  std::string path;  // save and restore: the file
  // Restore: the LoRA scales the restored cells count as computed with (a state file does not
  // say): those a request that names none gets. Empty when the model has no adapters.
  std::vector<float> lora;
  actor::ReplyTo<SlotActionDone> reply;
};

using EngineMessage =
    std::variant<AdmitSequence, ReleaseSequence, InspectEngine, FailEngine, SlotAction>;

}  // namespace troupe::engine
