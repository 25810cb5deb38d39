#pragma once
// Pad rows: idle slots that take a discarded token so that a step's sequences are one pass
// over the weights.
//
// With a KV stream per sequence (kv_unified off), llama.cpp cuts a step into ubatches with
// `split_equal(sequential)`: a ubatch holds sequences of consecutive ids only, one token each
// beside a generating sequence. Sequences 0-2 and 4-15 generating (slot 3 idle) are two
// ubatches, two passes over the weights; with 16 slots that step took 143-154 ms on the
// development machine where 0-15 took 80 (`1b` Q4_0, 2 threads). And a pass is not
// proportional to its rows: ggml's CPU-repacked kernels (Q4_0 and others) multiply four rows
// at a time and each leftover row alone, so 15 rows cost 125-136 ms there, 16 rows 80.
//
// An idle slot (free, or a prompt waiting for a later step) can take one token at the
// position after its cached cells, without an output, that the engine removes right after the
// decode (llama_memory_seq_rm): its cache is as before, the step one pass. plan_pads chooses
// those slots: the idle ones between the step's sequences, so that they are one run, and then
// idle ones next to the run up to the next multiple of four rows, each only where the learned
// cost of a step of that many rows (RowCosts, measured on the engine's own steps) says the
// padded step is the cheaper one. A cost not measured yet is learned by trying: a run's own
// row count first, then the padded count once; F16 weights, whose passes grow smoothly with
// their rows, stop padding to four after that one step.
//
// Pure arithmetic, no clock; not thread-safe: the engine thread's own.

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::engine {

// The time of a generation-only step by the rows of its first ubatch (its sequences plus
// pads): a floor, as the step pacer learns its generation step (step_pacer.hpp).
class RowCosts {
 public:
  explicit RowCosts(std::int32_t max_rows) : us_(static_cast<std::size_t>(max_rows) + 1, 0.0) {}
  void record(std::int32_t rows, double us);
  bool known(std::int32_t rows) const { return us(rows) > 0.0; }
  // 0: not measured (or out of range).
  double us(std::int32_t rows) const;

 private:
  std::vector<double> us_;
};

// A slot as the step sees it: in the step (a generating token, prompt tokens), idle (it may
// take a pad: a KV cell is free in its stream), or neither (its stream is full).
enum class RowRole : std::uint8_t { busy, idle, blocked };

// Marks (1) in `pad` the idle slots that take a pad token this step, given each slot's role
// (same length as `pad`); returns the rows of the step's first ubatch when it is one run of
// consecutive slots, pads included, else 0 (no pads: nothing busy, a full stream between the
// step's sequences, or the costs say the separate runs are cheaper). `always`: pad wherever a
// slot can, whatever the costs (tests).
std::int32_t plan_pads(std::span<const RowRole> roles, const RowCosts& costs,
                       std::span<std::uint8_t> pad, bool always = false);

}  // namespace troupe::engine
