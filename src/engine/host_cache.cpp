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

}  // namespace

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
    if (!std::ranges::equal(entries_[i].lora, lora))
      continue;
    const std::int32_t n = shared_prefix(prompt, entries_[i].tokens);
    if (n == 0 || n < entries_[i].min_keep)
      continue;
    if (!best || n > best->length ||
        (n == best->length && entries_[i].used > entries_[best->index].used))
      best = Match{i, n};
  }
  return best;
}

bool HostCache::covers(std::span<const Token> tokens, std::span<const float> lora,
                       std::int32_t min_keep) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return std::ranges::equal(e.lora, lora) && begins(tokens, e.tokens) && e.min_keep <= min_keep;
  });
}

bool HostCache::store(std::vector<Token> tokens, State state, std::vector<float> lora,
                      std::int32_t min_keep) {
  Entry entry{std::move(tokens), std::move(state), 0, std::move(lora), min_keep};
  if (!enabled() || entry.bytes() > budget_)
    return false;
  for (std::size_t i = entries_.size(); i-- > 0;) {
    if (std::ranges::equal(entries_[i].lora, entry.lora) &&
        begins(entries_[i].tokens, entry.tokens) && entry.min_keep <= entries_[i].min_keep)
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
