#pragma once
// CoreShare: the busy engines of one process split the threads between them.
//
// Each engine's graph runs on every thread it was given (-t), on the same cores as any other
// engine's. Two busy engines decoding at once on all their threads put twice as many threads
// on those cores, and the threads of a graph meet at a barrier after every operation: one that
// lost its core holds its graph's others up (ggml's own threadpool spins there; libgomp's
// sleeps, which hurts less). Taking turns (DecodeTurns) avoids that but leaves each engine's
// sampling and batching outside the decode unoverlapped, and every decode still crosses
// barriers on all cores. Splitting avoids both: while k engines are busy each decodes with
// its n_threads / k of them (the first n_threads % k engines by seat take one more), and an
// engine alone gets all of its threads back at its next step.
//
// An engine takes a Seat for its life, says busy() before each step's decode and idle() when
// it has nothing to do; threads() is what its next decode should use. The count is read at
// each step, so a share changes at the next step after another engine starts or stops.
//
// Thread-safety: any thread; a Seat is used by one thread at a time (its engine's).

#include <atomic>
#include <cstdint>
#include <optional>

namespace troupe::engine {

class CoreShare {
 public:
  static constexpr int kMaxSeats = 64;

  // The share of every engine of this process.
  static CoreShare& process();

  class Seat {
   public:
    Seat(Seat&& other) noexcept;
    Seat& operator=(Seat&&) = delete;
    Seat(const Seat&) = delete;
    Seat& operator=(const Seat&) = delete;
    ~Seat();  // idle, and the seat is free for another engine

    void busy() noexcept;
    void idle() noexcept;
    // The threads this engine should decode with now: n_threads split among the busy engines
    // (this one counted as busy), at least 1.
    std::int32_t threads(std::int32_t n_threads) const noexcept;

   private:
    friend class CoreShare;
    Seat(CoreShare& share, int index) noexcept : share_(&share), index_(index) {}
    CoreShare* share_;
    int index_;
    bool busy_ = false;
  };

  // A seat, or nothing when kMaxSeats engines already hold one (that engine then decodes on
  // all its threads, as without a share).
  std::optional<Seat> take_seat();
  // Engines busy now.
  int busy_count() const noexcept;

  // n_threads split among `busy` engines for the one at `rank` (0-based among them).
  static std::int32_t share_of(std::int32_t n_threads, int busy, int rank) noexcept;

 private:
  std::atomic<std::uint64_t> seats_{0};  // bit i: seat i taken
  std::atomic<std::uint64_t> busy_{0};   // bit i: seat i's engine busy
};

}  // namespace troupe::engine
