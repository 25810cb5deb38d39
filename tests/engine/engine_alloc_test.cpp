// The engine thread allocates nothing per token in steady state, outside llama.cpp's own
// llama_decode: sampling (argmax, logprobs, the fast path's full-vocabulary draw and its
// top_k/top_p/min_p filters, a grammar-constrained draw), batching and the tell to a runtime
// SequenceActor (the Coordinator's path, actor_sink) are counted with the counting
// operator new of tests/support/alloc_counter.
//
// One exclusion, for the grammar and chain paths: llama.cpp's grammar sampler and some of its
// chain samplers (typical_p's sort buffers, DRY's repeat counts, ...) allocate inside their
// calls, which no caller can avoid. llama_sampler_apply on it (llama_grammar_apply_impl)
// allocates the decoded code points of each candidate's piece (one vector per candidate:
// one for the engine's single-token check, one per candidate checked when the drawn token was
// rejected), the candidate list and the list of rejects (with the recursive
// llama_grammar_reject_candidates's own vectors); llama_sampler_accept on it
// (llama_grammar_accept_impl) allocates the decoded piece and the new parse stacks. This
// executable interposes llama_sampler_apply and llama_sampler_accept (its definitions win over
// libllama's; they forward through dlsym(RTLD_NEXT)) and counts what calls on a sampler named
// "grammar" or "chain" allocate on the calling thread; those paths subtract exactly that, and
// everything else the engine does between two decodes (troupe's code around the chain
// included) must still allocate nothing.
//
// The draft model path: its passes are llama_decode calls between the engine's own decodes;
// this executable interposes llama_decode too and subtracts what llama.cpp allocates inside
// it, so that the draft model's bookkeeping around its passes must allocate nothing.
//
// And one event that is not per token: the first time a grammar reaches a state where it
// rejects the drawn token, troupe stores that state's allowed set for every later sequence of
// the grammar (grammar_state.hpp), once. The steps that stored one are told apart by the
// store's size and excused; there must be few of them, and the others allocate nothing.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <future>
#include <latch>

#include "actor/actor_system.hpp"
#include "engine/batch_engine.hpp"
#include "engine/sequence_actor.hpp"
#include "engine_test_util.hpp"
#include "support/alloc_counter.hpp"

namespace {
// Allocations made inside llama.cpp's grammar sampler and sampler chain on this thread (see
// the top).
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_grammar_allocations = 0;
// Grammar passes over more than one token (the drawn token was rejected) on this thread.
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_grammar_full_passes = 0;
// Allocations made inside llama_decode on this thread (the draft model's passes).
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_decode_allocations = 0;

template <class Fn>
Fn real_llama(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
}

bool is_grammar(const llama_sampler* s) {
  return s && std::strcmp(llama_sampler_name(s), "grammar") == 0;
}

// The engine's calls into llama.cpp whose own allocations are excluded.
bool is_excluded(const llama_sampler* s) {
  return is_grammar(s) || (s && std::strcmp(llama_sampler_name(s), "chain") == 0);
}
}  // namespace

extern "C" void llama_sampler_apply(llama_sampler* smpl, llama_token_data_array* cur_p) {
  using Fn = void (*)(llama_sampler*, llama_token_data_array*);
  static const Fn real = real_llama<Fn>("llama_sampler_apply");
  const std::uint64_t before = troupe::test::thread_allocation_count();
  real(smpl, cur_p);
  if (is_excluded(smpl))
    t_grammar_allocations += troupe::test::thread_allocation_count() - before;
  if (is_grammar(smpl))
    t_grammar_full_passes += cur_p->size > 1 ? 1 : 0;
}

extern "C" int32_t llama_decode(llama_context* ctx, llama_batch batch) {
  using Fn = int32_t (*)(llama_context*, llama_batch);
  static const Fn real = real_llama<Fn>("llama_decode");
  const std::uint64_t before = troupe::test::thread_allocation_count();
  const int32_t rc = real(ctx, batch);
  t_decode_allocations += troupe::test::thread_allocation_count() - before;
  return rc;
}

extern "C" void llama_sampler_accept(llama_sampler* smpl, llama_token token) {
  using Fn = void (*)(llama_sampler*, llama_token);
  static const Fn real = real_llama<Fn>("llama_sampler_accept");
  const std::uint64_t before = troupe::test::thread_allocation_count();
  real(smpl, token);
  if (is_excluded(smpl))
    t_grammar_allocations += troupe::test::thread_allocation_count() - before;
}

namespace troupe::engine {
namespace {

// Receives a sequence's messages as a runtime actor; reports the token count at the end.
class TokenCounter final : public actor::Actor<SequenceMessage> {
 public:
  TokenCounter(std::promise<int>* done, int warm_up, std::promise<void>* warmed)
      : done_(done), warm_up_(warm_up), warmed_(warmed) {}
  void on_message(SequenceMessage& m) override {
    if (std::holds_alternative<SequenceStarted>(m) && --warm_up_ == 0)
      warmed_->set_value();
    if (const auto* t = std::get_if<SampledToken>(&m)) {
      ++tokens_;
      if (t->end != EngineEnd::none)
        done_->set_value(tokens_);
    }
  }

 private:
  std::promise<int>* done_;
  int warm_up_;  // warm-up messages still to come
  std::promise<void>* warmed_;
  int tokens_ = 0;
};

// Readings of the engine thread's allocation count at each decode's edges.
struct DecodeProbe {
  static constexpr std::size_t max_steps = 256;
  std::array<std::uint64_t, max_steps> begin{}, end{};
  std::size_t n_begin = 0, n_end = 0;  // engine thread only
  std::array<std::size_t, max_steps> learned_at_begin{}, learned_at_end{};
  std::uint64_t grammar_total = 0;       // what llama.cpp's grammar sampler allocated
  std::uint64_t full_passes = 0;         // its passes over more than one token
  const AllowedSets* learned = nullptr;  // the grammar's stored allowed sets, if any
  void operator()(DecodeEdge e) {
    grammar_total = t_grammar_allocations;
    full_passes = t_grammar_full_passes;
    const std::uint64_t n =
        troupe::test::thread_allocation_count() - t_grammar_allocations - t_decode_allocations;
    const std::size_t sets = learned ? learned->size() : 0;
    if (e == DecodeEdge::begin && n_begin < max_steps) {
      learned_at_begin[n_begin] = sets;
      begin[n_begin++] = n;
    }
    if (e == DecodeEdge::end && n_end < max_steps) {
      learned_at_end[n_end] = sets;
      end[n_end++] = n;
    }
  }
};

// The sampling paths measured: greedy (argmax), greedy with logprobs, the fast path drawing
// from the whole vocabulary at temperature 1 (a request without sampling fields), the fast
// path with llama-server's default filters, and that path constrained by a grammar (letters
// and spaces: the model's other tokens are rejected now and then, so both the single-token
// check and the top-k search run), and llama.cpp's chain with llama-server's other
// samplers (penalties, DRY, top_n_sigma, typical_p, XTC, dynamic temperature); and greedy with
// speculative decoding (n-gram drafts, several tokens kept in a step: sampled in turn, sent,
// the rejected drafts' cells removed); and greedy with a draft model's drafts (its passes run
// between the engine's decodes: what they allocate is counted too).
enum class Path {
  greedy,
  logprobs,
  full_vocab,
  filtered,
  grammar,
  chain,
  speculative,
  draft_model
};

SamplingParams sampling_for(Path path) {
  SamplingParams sp;
  sp.temperature = 0.0f;
  if (path == Path::logprobs) {
    sp.logprobs = true;
    sp.top_logprobs = 5;
  }
  if (path == Path::full_vocab) {
    sp.temperature = 1.0f;
    sp.seed = 3;
  }
  if (path == Path::filtered || path == Path::grammar || path == Path::chain) {
    sp.temperature = 0.8f;
    sp.top_k = 40;
    sp.top_p = 0.95f;
    sp.min_p = 0.05f;
    sp.seed = 3;
    sp.logprobs = true;
    sp.top_logprobs = 3;
  }
  if (path == Path::grammar)
    sp.grammar = GrammarSpec{R"(root ::= [a-z] [a-z ]*)", false, {}, {}};
  if (path == Path::chain) {
    sp.repeat_penalty = 1.1f;
    sp.dry_multiplier = 0.8f;
    sp.top_n_sigma = 3.0f;
    sp.typical_p = 0.95f;
    sp.xtc_probability = 0.5f;
    sp.dynatemp_range = 0.3f;
  }
  return sp;
}

std::string path_name(Path p) {
  switch (p) {
    case Path::greedy:
      return "greedy";
    case Path::logprobs:
      return "logprobs";
    case Path::full_vocab:
      return "full_vocab";
    case Path::filtered:
      return "filtered";
    case Path::grammar:
      return "grammar";
    case Path::chain:
      return "chain";
    case Path::speculative:
      return "speculative";
    case Path::draft_model:
      return "draft_model";
  }
  return "unknown";
}

class EngineAllocations : public ::testing::TestWithParam<Path> {};

TEST_P(EngineAllocations, NoneBetweenDecodesInSteadyState) {
  auto model = LlamaModel::load({testing::tiny_model()});
  ASSERT_TRUE(model) << model.error().message;
  constexpr int max_tokens = 48;

  actor::ActorSystem system(actor::SystemOptions{1});
  std::promise<int> done;
  std::promise<void> warmed;
  auto ref = system.spawn<TokenCounter>(actor::SpawnOptions{}, &done, 2 * max_tokens, &warmed);
  // Warm the mailbox's node pool beyond any backlog this test can build: with the actor's
  // only thread held, every message below is in flight at once. Wait until the hold really
  // runs: an actor turn already under way would drain the tells as they come and leave the
  // pool small. The latches outlive the handler that uses them.
  std::latch holding(1), hold(1);
  boost::asio::post(system.io_context(), [&holding, &hold] {
    holding.count_down();
    hold.wait();
  });
  holding.wait();
  for (int i = 0; i < 2 * max_tokens; ++i)
    ref.tell(SequenceStarted{});
  hold.count_down();
  warmed.get_future().wait();  // every warm-up node is back in the pool

  DecodeProbe probe;
  BatchEngineConfig cfg{512, 2, 128, 64};
  cfg.n_threads = 1;
  if (GetParam() == Path::speculative) {
    cfg.spec = SpecType::ngram_simple;
    cfg.spec_ngram_n = 2;
    cfg.spec_ngram_m = 6;
    cfg.spec_measured = false;
  }
  if (GetParam() == Path::draft_model) {
    cfg.spec_draft_max = 4;
    cfg.spec_measured = false;
  }
  auto listener = system.spawn<testing::ReleaseListener>(
      actor::SpawnOptions{}, std::function<void(std::uint64_t)>([](std::uint64_t) {}));
  auto engine = BatchEngine::start(
      system, **model, cfg, listener, [&probe](DecodeEdge e) { probe(e); },
      GetParam() == Path::draft_model ? model->get() : nullptr);
  ASSERT_TRUE(engine) << engine.error().message;

  AdmitSequence a;
  a.ticket = 1;
  for (Token t = 0; t < 12; ++t)
    a.prompt.push_back(100 + 37 * t);
  a.sampling = sampling_for(GetParam());
  SamplerPtr keep_sets;
  if (a.sampling.grammar) {
    auto g = make_grammar_sampler((*model)->vocab(), *a.sampling.grammar);
    ASSERT_TRUE(g) << g.error().message;
    a.grammar = std::move(g.value());
    // The engine frees its grammar when the sequence retires, which may be before the checks
    // below; a clone shares the sets and keeps them alive for the test.
    keep_sets.reset(llama_sampler_clone(a.grammar.get()));
    probe.learned = allowed_sets_of(keep_sets.get());
    ASSERT_NE(probe.learned, nullptr) << "the engine's grammars keep their states' allowed sets";
  }
  a.dry = make_dry_sampler((*model)->vocab(), a.sampling, 256);
  a.stop.max_tokens = max_tokens;
  a.stop.ignore_eos = true;
  a.sink = actor_sink(ref);
  (*engine)->tell(std::move(a));
  ASSERT_EQ(done.get_future().get(), max_tokens);  // after the last step's sample and tell

  // One prefill step, then one step per further token (fewer where drafts were kept); each
  // interval from the end of one decode to the start of the next covers sampling, the tells
  // and the next batch.
  if (GetParam() == Path::speculative || GetParam() == Path::draft_model) {
    ASSERT_LT(probe.n_end, static_cast<std::size_t>(max_tokens));
    EXPECT_GT((*engine)->counters().spec_accepted.load(), 0);
  } else {
    ASSERT_EQ(probe.n_end, static_cast<std::size_t>(max_tokens));
  }
  ASSERT_EQ(probe.n_begin, probe.n_end);
  std::size_t learning_steps = 0;
  for (std::size_t k = 0; k + 1 < probe.n_end; ++k) {
    if (probe.learned_at_begin[k + 1] != probe.learned_at_end[k]) {
      ++learning_steps;
      continue;
    }
    EXPECT_EQ(probe.begin[k + 1] - probe.end[k], 0u) << "after decode " << k;
  }
  if (GetParam() == Path::grammar) {
    EXPECT_GT(probe.grammar_total, 0u) << "the grammar ran, and its allocations were seen";
    EXPECT_GT(probe.full_passes, 0u) << "a rejected draw had the grammar pass over candidates";
    // The grammar has two states ([a-z] first, then [a-z ] or the end): each learned once.
    EXPECT_GE(probe.learned->size(), 1u);
    EXPECT_LE(probe.learned->size(), 2u);
    EXPECT_EQ(learning_steps, probe.learned->size());
  } else {
    EXPECT_EQ(learning_steps, 0u);
  }
  if (GetParam() == Path::chain) {
    EXPECT_GT(probe.grammar_total, 0u) << "the chain ran, and its own allocations were seen";
  }
}

INSTANTIATE_TEST_SUITE_P(SamplingPaths, EngineAllocations,
                         ::testing::Values(Path::greedy, Path::logprobs, Path::full_vocab,
                                           Path::filtered, Path::grammar, Path::chain,
                                           Path::speculative, Path::draft_model),
                         [](const auto& info) { return path_name(info.param); });

}  // namespace
}  // namespace troupe::engine
