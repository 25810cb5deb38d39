#include "engine/ngram_draft.hpp"

#include <algorithm>
#include <array>

#include "engine/step_rows.hpp"

namespace troupe::engine {

std::int32_t ngram_draft(std::span<const Token> history, const NgramDraftParams& params,
                         std::span<Token> out) noexcept {
  const auto n = static_cast<std::size_t>(std::max(params.size_n, 0));
  const auto m = std::min(static_cast<std::size_t>(std::max(params.size_m, 0)), out.size());
  if (n == 0 || m == 0 || history.size() <= n)
    return 0;
  const std::span<const Token> pattern = history.last(n);
  // The latest occurrence that ends before the history does: its continuation is known.
  for (std::size_t start = history.size() - n; start-- > 0;) {
    if (!std::equal(pattern.begin(), pattern.end(),
                    history.begin() + static_cast<std::ptrdiff_t>(start))) {
      continue;
    }
    // Copied as an overlapping copy is: past the history's end, from the draft itself.
    const std::size_t from = start + n;
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t src = from + j;
      out[j] = src < history.size() ? history[src] : out[src - history.size()];
    }
    return static_cast<std::int32_t>(m);
  }
  return 0;
}

std::int32_t prediction_draft(std::span<const Token> prediction, std::span<const Token> answer,
                              std::int32_t size_m, std::size_t& cursor,
                              std::span<Token> out) noexcept {
  constexpr std::size_t kLongest = 8;
  if (prediction.empty() || answer.empty() || size_m < 1)
    return 0;
  constexpr std::size_t shortest = 2;
  if (answer.size() < shortest)
    return 0;
  for (std::size_t k = std::min(answer.size(), kLongest); k >= shortest; --k) {
    const std::span<const Token> tail = answer.last(k);
    const auto find = [&](std::size_t from, std::size_t to) {  // first start in [from, to)
      for (std::size_t s = from; s < to && s + k <= prediction.size(); ++s) {
        if (std::equal(tail.begin(), tail.end(),
                       prediction.begin() + static_cast<std::ptrdiff_t>(s)))
          return s;
      }
      return prediction.size();
    };
    const std::size_t lo = std::min(cursor >= k ? cursor - k : 0, prediction.size());
    std::size_t at = find(lo, prediction.size());
    if (at == prediction.size())
      at = find(0, lo);
    if (at == prediction.size())
      continue;
    cursor = at + k;
    const std::size_t n =
        std::min({static_cast<std::size_t>(size_m), out.size(), prediction.size() - cursor});
    std::copy_n(prediction.begin() + static_cast<std::ptrdiff_t>(cursor), n, out.begin());
    return static_cast<std::int32_t>(n);
  }
  return 0;
}

namespace {

// The cost of a generation-only step of `rows` rows: measured, interpolated between the
// nearest measured counts, or beyond the largest one extrapolated optimistically (a tenth of
// that step per row); 0 when nothing at or below `rows` is known.
double step_us(const RowCosts& costs, std::int32_t rows, std::int32_t known_below,
               std::int32_t max_rows) {
  if (costs.known(rows))
    return costs.us(rows);
  std::int32_t above = rows + 1;
  while (above <= max_rows && !costs.known(above))
    ++above;
  const double lo = costs.us(known_below);
  if (above > max_rows)
    return lo * (1.0 + 0.1 * (rows - known_below));
  const double t = static_cast<double>(rows - known_below) / (above - known_below);
  return lo + t * (costs.us(above) - lo);
}

}  // namespace

std::int32_t choose_drafts(std::span<const DraftOffer> offers, std::int32_t generating,
                           const RowCosts& costs, std::span<std::int32_t> take,
                           double model_pass_us) noexcept {
  std::fill(take.begin(), take.end(), 0);
  if (generating < 1 || !costs.known(generating))
    return 0;
  // Tokens go to the offer with the largest expected gain next (each offer's gains shrink, so
  // this is the best order to add them in); the best prefix of that order wins, not the first
  // local optimum: four rows may cost what one does where kernels multiply four at a time.
  constexpr std::int32_t kMaxRows = 256;
  std::int32_t rows = generating, best_rows = generating, known_below = generating;
  double tokens = generating;
  double best_rate = tokens / costs.us(generating);
  std::int32_t best_added = 0;
  // next[i]: p_i^(take_i + 1), the gain of offer i's next token; tried[i] counts its tokens.
  std::array<double, 64> next{};
  std::array<std::int32_t, 64> tried{};
  const std::size_t n = std::min(offers.size(), next.size());
  for (std::size_t i = 0; i < n; ++i)
    next[i] = offers[i].available > 0 ? std::clamp(offers[i].p, 0.0, 1.0) : 0.0;
  // The order the tokens were added in, to replay the best prefix.
  std::array<std::uint8_t, kMaxRows> order{};
  std::int32_t added = 0;
  std::int32_t passes = 0;  // the draft model's passes the tokens so far need
  while (rows < kMaxRows) {
    std::size_t pick = n;
    for (std::size_t i = 0; i < n; ++i) {
      if (tried[i] < offers[i].available && next[i] > 0.0 && (pick == n || next[i] > next[pick]))
        pick = i;
    }
    if (pick == n)
      break;
    tokens += next[pick];
    next[pick] *= std::clamp(offers[pick].p, 0.0, 1.0);
    ++tried[pick];
    if (offers[pick].by_model)
      passes = std::max(passes, tried[pick]);
    order[static_cast<std::size_t>(added++)] = static_cast<std::uint8_t>(pick);
    ++rows;
    if (costs.known(rows))
      known_below = rows;
    const double rate =
        tokens / (step_us(costs, rows, known_below, kMaxRows) + passes * model_pass_us);
    if (rate > best_rate) {
      best_rate = rate;
      best_rows = rows;
      best_added = added;
    }
  }
  for (std::int32_t k = 0; k < best_added; ++k)
    ++take[order[static_cast<std::size_t>(k)]];
  return best_rows - generating;
}

}  // namespace troupe::engine
