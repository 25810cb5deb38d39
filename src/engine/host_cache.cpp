#include "engine/host_cache.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

namespace troupe::engine {
namespace {

std::int32_t shared_prefix(std::span<const Token> a, std::span<const Token> b) {
  const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  return static_cast<std::int32_t>(ia - a.begin());
}

// Whether `a` begins `b` (or equals it).
bool begins(std::span<const Token> a, std::span<const Token> b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Whether entry `e` serves every prefix of `lo` to `hi` of its tokens with one state: its own
// or a checkpoint's.
bool serves_all(const HostCache::Entry& e, std::int32_t lo, std::int32_t hi) {
  if (lo >= e.min_keep && hi <= static_cast<std::int32_t>(e.tokens.size()))
    return true;
  return std::any_of(e.checkpoints.begin(), e.checkpoints.end(), [&](const ContextCheckpoint& c) {
    return lo >= c.min_keep && hi <= c.n_tokens;
  });
}

// Whether entry `e` serves every prefix that a state of `tokens` with scales `lora`, serving
// from `min_keep`, and its `checkpoints` serve.
bool holds(const HostCache::Entry& e, std::span<const Token> tokens, std::span<const float> lora,
           std::int32_t min_keep, std::span<const ContextCheckpoint> checkpoints) {
  return std::ranges::equal(e.lora, lora) && begins(tokens, e.tokens) &&
         serves_all(e, min_keep, static_cast<std::int32_t>(tokens.size())) &&
         std::all_of(checkpoints.begin(), checkpoints.end(), [&](const ContextCheckpoint& c) {
           return serves_all(e, c.min_keep, c.n_tokens);
         });
}

}  // namespace

CheckpointServing serving_checkpoint(std::span<const ContextCheckpoint> checkpoints,
                                     std::int32_t n) {
  CheckpointServing best;
  for (std::size_t k = 0; k < checkpoints.size(); ++k) {
    const std::int32_t keep = std::min(n, checkpoints[k].n_tokens);
    if (keep > best.keep && checkpoints[k].serves(keep))
      best = {keep, static_cast<std::int32_t>(k)};
  }
  return best;
}

std::size_t HostCache::Entry::bytes() const {
  std::size_t n = state.size() + tokens.size() * sizeof(Token) + lora.size() * sizeof(float);
  for (const ContextCheckpoint& c : checkpoints)
    n += c.state.size() + sizeof(c);
  return n;
}

HostCache::State::State(std::size_t n, bool huge) : size_(n) {
  if (n == 0)
    return;
  // Mapped on a 2 MiB boundary (the slack around it given back), so that every whole 2 MiB of
  // it can be a huge page.
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t mapped = n + kHuge;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    size_ = 0;  // no memory: an empty state, which the engine does not store
    return;
  }
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t start = (base + kHuge - 1) & ~(kHuge - 1);
  const std::uintptr_t page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::uintptr_t end = (start + n + page - 1) & ~(page - 1);
  if (start > base)
    munmap(p, start - base);
  if (base + mapped > end)
    munmap(reinterpret_cast<void*>(end), base + mapped - end);
  data_ = reinterpret_cast<std::uint8_t*>(start);
  // Both are hints: without THP or MADV_POPULATE_WRITE (Linux 5.14) the pages come on first
  // touch as usual.
  if (huge)
    madvise(data_, n, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
  madvise(data_, n, MADV_POPULATE_WRITE);
#endif
}

bool PageChoice::next_huge() {
  ++count_;
  if (cost_[1] == 0.0)
    return true;
  if (cost_[0] == 0.0)
    return false;
  const bool cheaper = cost_[1] <= cost_[0];
  return count_ % kProbe == 0 ? !cheaper : cheaper;
}

void PageChoice::record(bool huge, std::size_t bytes, double us) {
  constexpr double kAlpha = 0.25;
  if (bytes < kMinBytes || !(us >= 0.0))
    return;
  const double sample = us * 1000.0 / static_cast<double>(bytes);
  double& cost = cost_[huge ? 1 : 0];
  cost = cost == 0.0 ? sample : cost + kAlpha * (sample - cost);
}

HostCache::State HostCache::allocate(std::size_t n) {
  const bool huge = pages_.next_huge();
  const auto t0 = std::chrono::steady_clock::now();
  State state(n, huge);
  if (state.size() != 0)
    pages_.record(
        huge, n,
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  return state;
}

HostCache::State& HostCache::State::operator=(State&& o) noexcept {
  if (this != &o) {
    State gone(std::move(*this));
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

HostCache::State::~State() {
  if (data_ != nullptr)
    munmap(data_, size_);
}

std::optional<HostCache::Match> HostCache::find(std::span<const Token> prompt,
                                                std::span<const float> lora) const {
  std::optional<Match> best;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!std::ranges::equal(e.lora, lora))
      continue;
    const std::int32_t n = shared_prefix(prompt, e.tokens);
    Match m{i, n, -1};
    if (n < e.min_keep) {
      const CheckpointServing c = serving_checkpoint(e.checkpoints, n);
      m = Match{i, c.keep, c.index};
    }
    if (m.length > 0 && (!best || m.length > best->length ||
                         (m.length == best->length && e.used > entries_[best->index].used)))
      best = m;
  }
  return best;
}

bool HostCache::covers(std::span<const Token> tokens, std::span<const float> lora,
                       std::int32_t min_keep,
                       std::span<const ContextCheckpoint> checkpoints) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const Entry& e) { return holds(e, tokens, lora, min_keep, checkpoints); });
}

bool HostCache::store(std::vector<Token> tokens, State state, std::vector<float> lora,
                      std::int32_t min_keep, std::vector<ContextCheckpoint> checkpoints) {
  Entry entry{std::move(tokens), std::move(state), 0,
              std::move(lora),   min_keep,         std::move(checkpoints)};
  if (!enabled() || entry.bytes() > budget_)
    return false;
  for (std::size_t i = entries_.size(); i-- > 0;) {
    const Entry& e = entries_[i];
    if (holds(entry, e.tokens, e.lora, e.min_keep, e.checkpoints))
      erase(i);
  }
  while (bytes_ + entry.bytes() > budget_) {
    const auto oldest =
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.used < b.used; });
    erase(static_cast<std::size_t>(oldest - entries_.begin()));
  }
  entry.used = ++clock_;
  bytes_ += entry.bytes();
  entries_.push_back(std::move(entry));
  return true;
}

void HostCache::erase(std::size_t index) {
  bytes_ -= entries_[index].bytes();
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
}

}  // namespace troupe::engine
