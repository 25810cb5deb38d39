#pragma once
// Mailbox<T>: the MPSC queue behind every actor. An intrusive Vyukov queue (wait-free push,
// one exchange) whose nodes come from a per-mailbox lock-free free list, so a push in steady
// state allocates nothing: the consumer returns each node to the list after use and producers
// take them back. The list keeps the peak number of nodes in flight until the mailbox is
// destroyed (that peak is the memory bound of an unbounded mailbox).
//
// Bound: with capacity > 0, push() refuses (returns false) when `capacity` messages are
// queued. The caller counts and reports the rejection; nothing is dropped silently.
//
// Thread-safety: push() from any number of threads concurrently. try_consume(), empty() and
// the destructor from the single consumer only (the actor's handler context); the destructor
// also requires that no push() is running.

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace troupe::actor {

template <class T>
class Mailbox {
 public:
  explicit Mailbox(std::size_t capacity = 0) : capacity_(capacity) {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  ~Mailbox();

  // Constructs a T from args in a node and enqueues it. Returns false, constructing nothing,
  // when the mailbox is bounded and full. May allocate a node when the free list is empty
  // (warm-up); never blocks. Any thread.
  template <class... Args>
  bool push(Args&&... args);

  // Pops the oldest message, calls fn(T&) with it, then destroys it and recycles its node,
  // also when fn throws. Returns false when nothing could be taken (empty, or a producer is
  // between its two steps: then empty() is false and the message shows up within
  // instructions). Consumer only.
  template <class Fn>
  bool try_consume(Fn&& fn);

  // True when no message is queued and no push is in progress. A push that completed
  // (its exchange happened, seq_cst) before this call is always seen. Consumer only.
  bool empty() const noexcept {
    return head_ == &stub_ && tail_.load(std::memory_order_seq_cst) == &stub_;
  }

  // True when a message may be queued. Any thread; may be stale-true (never stale-false
  // for a push that completed before the call, in the seq_cst order).
  bool has_pending() const noexcept { return tail_.load(std::memory_order_seq_cst) != &stub_; }

  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct NodeBase {
    std::atomic<NodeBase*> next{nullptr};
  };
  struct Node : NodeBase {
    alignas(T) unsigned char storage[sizeof(T)];
    T& value() noexcept { return *std::launder(reinterpret_cast<T*>(storage)); }
  };
  using NodeAlloc = std::allocator<Node>;

  void enqueue(NodeBase* n) noexcept;
  NodeBase* dequeue() noexcept;
  Node* take_node();
  void recycle(Node* n) noexcept;

  // Free list head: a Node* in the low 48 bits, an ABA tag in the high 16. Nodes are never
  // returned to the allocator before the destructor, so reading next of a node another
  // thread just took is safe (the tag makes the CAS fail).
  static constexpr std::uint64_t kPtrMask = (std::uint64_t{1} << 48) - 1;
  static Node* ptr_of(std::uint64_t v) noexcept { return reinterpret_cast<Node*>(v & kPtrMask); }
  static std::uint64_t pack(Node* n, std::uint64_t tag) noexcept {
    return reinterpret_cast<std::uint64_t>(n) | (tag << 48);
  }

  const std::size_t capacity_;
  alignas(64) std::atomic<NodeBase*> tail_{&stub_};  // producers
  std::atomic<std::uint64_t> free_{0};               // producers pop, consumer pushes
  std::atomic<std::size_t> size_{0};                 // only maintained when bounded
  alignas(64) NodeBase* head_ = &stub_;              // consumer
  NodeBase stub_;
};

template <class T>
Mailbox<T>::~Mailbox() {
  NodeAlloc alloc;
  while (NodeBase* b = dequeue()) {
    Node* n = static_cast<Node*>(b);
    n->value().~T();
    alloc.deallocate(n, 1);
  }
  for (Node* n = ptr_of(free_.load()); n != nullptr;) {
    Node* next = static_cast<Node*>(n->next.load(std::memory_order_relaxed));
    alloc.deallocate(n, 1);
    n = next;
  }
}

template <class T>
template <class... Args>
bool Mailbox<T>::push(Args&&... args) {
  if (capacity_ != 0 && size_.fetch_add(1, std::memory_order_relaxed) >= capacity_) {
    size_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  Node* n = take_node();
  try {
    ::new (static_cast<void*>(n->storage)) T(std::forward<Args>(args)...);
  } catch (...) {
    recycle(n);
    if (capacity_ != 0)
      size_.fetch_sub(1, std::memory_order_relaxed);
    throw;
  }
  enqueue(n);
  return true;
}

template <class T>
template <class Fn>
bool Mailbox<T>::try_consume(Fn&& fn) {
  NodeBase* b = dequeue();
  if (b == nullptr)
    return false;
  Node* n = static_cast<Node*>(b);
  // The message leaves the queue now: it no longer counts against the bound.
  if (capacity_ != 0)
    size_.fetch_sub(1, std::memory_order_relaxed);
  struct Release {
    Mailbox* self;
    Node* n;
    ~Release() {
      n->value().~T();
      self->recycle(n);
    }
  } release{this, n};
  std::forward<Fn>(fn)(n->value());
  return true;
}

template <class T>
void Mailbox<T>::enqueue(NodeBase* n) noexcept {
  n->next.store(nullptr, std::memory_order_relaxed);
  NodeBase* prev = tail_.exchange(n, std::memory_order_seq_cst);
  prev->next.store(n, std::memory_order_release);
}

// Vyukov's intrusive MPSC pop (1024cores.net), with the stub node re-inserted when the
// queue runs dry.
template <class T>
typename Mailbox<T>::NodeBase* Mailbox<T>::dequeue() noexcept {
  NodeBase* head = head_;
  NodeBase* next = head->next.load(std::memory_order_acquire);
  if (head == &stub_) {
    if (next == nullptr)
      return nullptr;
    head_ = next;
    head = next;
    next = next->next.load(std::memory_order_acquire);
  }
  if (next != nullptr) {
    head_ = next;
    return head;
  }
  if (head != tail_.load(std::memory_order_acquire))
    return nullptr;  // push in progress
  enqueue(&stub_);
  next = head->next.load(std::memory_order_acquire);
  if (next == nullptr)
    return nullptr;
  head_ = next;
  return head;
}

template <class T>
typename Mailbox<T>::Node* Mailbox<T>::take_node() {
  std::uint64_t old = free_.load(std::memory_order_acquire);
  while (Node* n = ptr_of(old)) {
    auto* next = static_cast<Node*>(n->next.load(std::memory_order_relaxed));
    if (free_.compare_exchange_weak(old, pack(next, (old >> 48) + 1), std::memory_order_acquire,
                                    std::memory_order_acquire)) {
      return n;
    }
  }
  // Warm-up: the pool grows to the peak number of nodes in flight.
  Node* n = NodeAlloc{}.allocate(1);
  ::new (static_cast<void*>(n)) Node;
  assert((reinterpret_cast<std::uint64_t>(n) & ~kPtrMask) == 0);
  return n;
}

template <class T>
void Mailbox<T>::recycle(Node* n) noexcept {
  std::uint64_t old = free_.load(std::memory_order_relaxed);
  do {
    n->next.store(ptr_of(old), std::memory_order_relaxed);
  } while (!free_.compare_exchange_weak(old, pack(n, (old >> 48) + 1), std::memory_order_release,
                                        std::memory_order_relaxed));
}

}  // namespace troupe::actor
