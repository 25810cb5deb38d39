#include "engine/draft_model.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "engine/placement_llama.hpp"
#include "engine/sampler_simd.hpp"
#include "engine/threadpool.hpp"

namespace troupe::engine {

namespace {

// llama-server's limits (common/speculative.cpp): vocabularies may differ by this many tokens,
// and the first few (special) tokens' text is not compared.
constexpr int kVocabSizeSlack = 128;
constexpr int kFirstComparedToken = 5;

}  // namespace

std::string draft_vocab_mismatch(const LlamaModel& target, const LlamaModel& draft) {
  const llama_vocab* t = target.vocab();
  const llama_vocab* d = draft.vocab();
  if (llama_vocab_type(t) != llama_vocab_type(d))
    return "its tokenizer is of another type";
  if (llama_vocab_get_add_bos(t) != llama_vocab_get_add_bos(d) ||
      (llama_vocab_get_add_bos(t) && llama_vocab_bos(t) != llama_vocab_bos(d))) {
    return "it begins sequences with another BOS token";
  }
  if (llama_vocab_get_add_eos(t) != llama_vocab_get_add_eos(d) ||
      (llama_vocab_get_add_eos(t) && llama_vocab_eos(t) != llama_vocab_eos(d))) {
    return "it ends sequences with another EOS token";
  }
  const int nt = llama_vocab_n_tokens(t);
  const int nd = llama_vocab_n_tokens(d);
  if (std::abs(nt - nd) > kVocabSizeSlack)
    return fmt::format("its vocabulary has {} tokens, the model's {}", nd, nt);
  for (int i = kFirstComparedToken; i < std::min(nt, nd); ++i) {
    if (std::strcmp(llama_vocab_get_text(t, i), llama_vocab_get_text(d, i)) != 0)
      return fmt::format("its token {} is another text", i);
  }
  return {};
}

Result<std::unique_ptr<DraftModel>> DraftModel::create(const LlamaModel& target,
                                                       const LlamaModel& draft,
                                                       const BatchEngineConfig& config) {
  if (const std::string why = draft_vocab_mismatch(target, draft); !why.empty()) {
    return Error{Errc::invalid_request,
                 "the draft model cannot draft for this model: " + why + " (llama-server's rule)",
                 "spec_draft_model"};
  }
  if (!draft.memory_cuts_anywhere()) {
    return Error{Errc::invalid_request,
                 "the draft model's memory cannot drop a drafted token again (recurrent, hybrid "
                 "or sliding-window attention)",
                 "spec_draft_model"};
  }
  if (config.embeddings) {
    return Error{Errc::invalid_request, "a draft model drafts generation, not embeddings",
                 "spec_draft_model"};
  }
  auto params = engine_context_params(config);
  if (!params)
    return params.error();
  ContextPtr ctx(llama_init_from_model(draft.get(), *params));
  if (!ctx)
    return Error{Errc::engine_failed, "llama.cpp could not create the draft model's context"};
  return std::unique_ptr<DraftModel>(new DraftModel(target, draft, config, std::move(ctx)));
}

DraftModel::DraftModel(const LlamaModel& target, const LlamaModel& draft,
                       const BatchEngineConfig& config, ContextPtr ctx)
    : draft_(draft),
      n_vocab_target_(target.n_vocab()),
      n_min_(config.spec_draft_min),
      p_min_(config.spec_draft_p_min),
      ctx_(std::move(ctx)),
      mem_(llama_get_memory(ctx_.get())),
      batch_(config.n_batch + config.n_parallel),
      seen_(static_cast<std::size_t>(config.n_parallel)),
      fed_(static_cast<std::size_t>(config.n_parallel)),
      row_(static_cast<std::size_t>(config.n_parallel)),
      live_(static_cast<std::size_t>(config.n_parallel)),
      sums_(static_cast<std::size_t>(draft.n_vocab() / simd::block + 1)) {
  const auto per_seq = static_cast<std::size_t>(llama_n_ctx_seq(ctx_.get()));
  for (auto& s : seen_)
    s.reserve(per_seq);
}

DraftModel::~DraftModel() = default;

void DraftModel::attach(CpuThreadpool* pool, std::int32_t threads) {
  if (pool)
    llama_attach_threadpool(ctx_.get(), pool->get(), pool->get());
  else
    llama_detach_threadpool(ctx_.get());
  llama_set_n_threads(ctx_.get(), threads, threads);
}

void DraftModel::draft(std::span<DraftWant> wants) {
  for (auto& w : wants)
    w.drafted = 0;
  if (broken_ || wants.empty())
    return;
  // Catch up: each sequence keeps the prefix its draft cells share with its history, but
  // always decodes its history's last token again (its logits are the first draft's).
  for (std::size_t k = 0; k < wants.size(); ++k) {
    const DraftWant& w = wants[k];
    auto& seen = seen_[static_cast<std::size_t>(w.seq)];
    const auto limit = std::min(seen.size(), w.history.size() - 1);
    const auto common = static_cast<std::size_t>(
        std::mismatch(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(limit),
                      w.history.begin())
            .first -
        seen.begin());
    if (common < seen.size()) {
      llama_memory_seq_rm(mem_, w.seq, static_cast<llama_pos>(common), -1);
      seen.resize(common);
    }
    fed_[k] = common;
    // A target token the draft model does not know stops its drafting before it starts.
    live_[k] = w.out.empty() ? 0 : 1;
    for (std::size_t i = common; i < w.history.size() && live_[k] != 0; ++i)
      live_[k] = w.history[i] < draft_.n_vocab() ? 1 : 0;
  }
  // The catch-up passes, as many tokens each as the batch holds; a sequence's first draft comes
  // from the pass that decodes its history's last token.
  for (;;) {
    batch_.clear();
    for (std::size_t k = 0; k < wants.size(); ++k) {
      const DraftWant& w = wants[k];
      row_[k] = -1;
      while (live_[k] != 0 && fed_[k] < w.history.size() && batch_.size() < batch_.capacity()) {
        const std::size_t i = fed_[k]++;
        const bool last = i + 1 == w.history.size();
        const std::int32_t row =
            batch_.add(w.history[i], static_cast<llama_pos>(i), w.seq, /*logits=*/last);
        if (last)
          row_[k] = row;
      }
    }
    if (batch_.size() == 0)
      break;
    if (!decode(wants)) {
      give_up(wants);
      return;
    }
    take_guesses(wants);
  }
  // The history is all in the draft cells now (or the sequence stopped).
  for (std::size_t k = 0; k < wants.size(); ++k) {
    const DraftWant& w = wants[k];
    auto& seen = seen_[static_cast<std::size_t>(w.seq)];
    seen.insert(seen.end(), w.history.begin() + static_cast<std::ptrdiff_t>(seen.size()),
                w.history.begin() + static_cast<std::ptrdiff_t>(fed_[k]));
  }
  // Then one pass per drafted position for the sequences still drafting.
  for (;;) {
    batch_.clear();
    for (std::size_t k = 0; k < wants.size(); ++k) {
      const DraftWant& w = wants[k];
      row_[k] = -1;
      if (live_[k] == 0)
        continue;
      const auto d = static_cast<std::size_t>(w.drafted);
      row_[k] =
          batch_.add(w.out[d - 1], static_cast<llama_pos>(w.history.size() + d - 1), w.seq, true);
    }
    if (batch_.size() == 0)
      break;
    if (!decode(wants)) {
      give_up(wants);
      return;
    }
    for (std::size_t k = 0; k < wants.size(); ++k) {
      if (row_[k] >= 0) {  // its last guess is in its draft cells now
        const DraftWant& w = wants[k];
        seen_[static_cast<std::size_t>(w.seq)].push_back(
            w.out[static_cast<std::size_t>(w.drafted) - 1]);
      }
    }
    take_guesses(wants);
  }
  for (auto& w : wants) {
    if (w.drafted < n_min_)
      w.drafted = 0;
  }
}

// After a pass: each want with a logits row in it guesses its next token from them, and goes
// on while it has room.
void DraftModel::take_guesses(std::span<DraftWant> wants) {
  for (std::size_t k = 0; k < wants.size(); ++k) {
    if (row_[k] < 0)
      continue;
    const Token t = pick(row_[k]);
    if (t < 0) {
      live_[k] = 0;
      continue;
    }
    DraftWant& w = wants[k];
    w.out[static_cast<std::size_t>(w.drafted++)] = t;
    live_[k] = static_cast<std::size_t>(w.drafted) < w.out.size() ? 1 : 0;
  }
}

bool DraftModel::decode(std::span<const DraftWant> wants) {
  const auto t0 = std::chrono::steady_clock::now();
  int rc = llama_decode(ctx_.get(), batch_.get());
  if (rc == 1) {
    // No cells for the pass: the sequences not drafting give theirs back, once.
    for (std::size_t seq = 0; seq < seen_.size(); ++seq) {
      const bool asking = std::any_of(wants.begin(), wants.end(), [&](const DraftWant& w) {
        return static_cast<std::size_t>(w.seq) == seq;
      });
      if (!asking && !seen_[seq].empty()) {
        llama_memory_seq_rm(mem_, static_cast<llama_seq_id>(seq), -1, -1);
        seen_[seq].clear();
      }
    }
    rc = llama_decode(ctx_.get(), batch_.get());
    if (rc == 1) {
      spdlog::debug("draft model: no free cells for a pass of {} tokens; no drafts this step",
                    batch_.size());
      return false;
    }
  }
  if (rc != 0) {
    spdlog::warn("draft model: llama_decode failed with status {}; drafting is off from now on",
                 rc);
    broken_ = true;
    return false;
  }
  if (batch_.size() <= 2 * static_cast<std::int32_t>(wants.size())) {
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    pass_us_ = pass_us_ == 0.0 ? us : 0.8 * pass_us_ + 0.2 * us;
  }
  return true;
}

Token DraftModel::pick(std::int32_t row) {
  const float* logits = llama_get_logits_ith(ctx_.get(), row);
  if (logits == nullptr)
    return -1;
  const int n = draft_.n_vocab();
  const float top = simd::max_value(logits, n);
  const int best = simd::first_index_of(logits, n, top);
  if (best >= n || best >= n_vocab_target_)
    return -1;
  if (p_min_ > 0.0f) {
    // Its probability: 1 / sum of exp(l - top) over the vocabulary.
    const double total = simd::block_sums(logits, n, top, 1.0f, sums_.data());
    if (1.0 / total < static_cast<double>(p_min_))
      return -1;
  }
  return best;
}

// A pass failed: nothing is drafted this step, and each sequence's draft cells are again the
// tokens it is known to hold.
void DraftModel::give_up(std::span<DraftWant> wants) {
  for (auto& w : wants) {
    w.drafted = 0;
    const auto& seen = seen_[static_cast<std::size_t>(w.seq)];
    llama_memory_seq_rm(mem_, w.seq, static_cast<llama_pos>(seen.size()), -1);
  }
}

}  // namespace troupe::engine
