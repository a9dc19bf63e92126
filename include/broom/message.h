// Copyright Broom authors.
//
// message.h: Message<T>, a transferable region plus its root object (ECOOP's Region<T>).
//
//   auto m = broom::Message<Batch>::Create(args...);   // region + root built inside it
//   m->records.push_back(...);                          // fill (open it for nested allocation)
//   queue.push(std::move(m));                            // ownership moves with the message
//
// Everything reachable from the root must live in the message's region (self-contained); build
// nested data while the message is open (Open(), or Create's constructor, which runs open) or
// copy it in with broom::Clone.
#ifndef BROOM_MESSAGE_H_
#define BROOM_MESSAGE_H_

#include <optional>
#include <utility>

#include "broom/clone.h"
#include "broom/context.h"
#include "broom/transferable_region.h"

namespace broom {

// A transferable region with a distinguished root object of type T.
//
// Ownership and lifetime: move-only, with the typestate of TransferableRegion; the root lives in
// the region and dies with it (its destructor runs at bulk free). A default-constructed or
// moved-from Message is empty; dereferencing it is fatal.
//
// Thread-safety: owner-thread only, like TransferableRegion; moving the Message to another thread
// hands over the region and the root.
template <class T>
class Message {
 public:
  Message() = default;
  Message(Message&& other) noexcept
      : region_(std::move(other.region_)), root_offset_(std::exchange(other.root_offset_, 0)) {}
  Message& operator=(Message&& other) noexcept {
    if (this != &other) {
      root_offset_ = 0;
      region_ = std::move(other.region_);
      root_offset_ = std::exchange(other.root_offset_, 0);
    }
    return *this;
  }

  // Creates a region and constructs the root in it, with the region open as the allocation
  // context (so the constructor's allocations land in it). Throws std::bad_alloc on failure.
  template <class... Args>
  static Message Create(Args&&... args) {
    return CreateWith(RegionOptions{}, std::forward<Args>(args)...);
  }
  template <class... Args>
  static Message CreateWith(const RegionOptions& options, Args&&... args) {
    Message m;
    m.region_.emplace(options);
    ContextScope open(m.region_->region());
    m.SetRoot(NewIn<T>(m.region_->region(), std::forward<Args>(args)...));
    return m;
  }

  // A fresh message holding a clone of `src` (see clone.h).
  static Message CloneOf(const T& src, const RegionOptions& options = {}) {
    Message m;
    m.region_.emplace(options);
    m.SetRoot(Clone(src, m.region_->region()));
    return m;
  }

  explicit operator bool() const { return root_offset_ != 0 && region_ && region_->usable(); }
  T* get() const { return root(); }
  T& operator*() const { return *root(); }
  T* operator->() const { return root(); }

  TransferableRegion& region() { return *region_; }
  [[nodiscard]] ContextScope Open() { return region_->Open(); }
  [[nodiscard]] Message Transfer() { return std::move(*this); }

  // Gives up ownership, returning the raw region and root (for engines that carry them in their
  // own message types); rebuild with Adopt. REQUIRES: closed.
  std::pair<Region*, T*> Release() {
    T* root = this->root();
    root_offset_ = 0;
    return {region_->Release(), root};
  }
  static Message Adopt(Region* region, T* root) {
    Message m;
    m.region_.emplace(TransferableRegion::Adopt(region));
    m.SetRoot(root);
    return m;
  }

 private:
  T* root() const {
    if (BROOM_UNLIKELY(!*this)) DieEmpty();
    return reinterpret_cast<T*>(reinterpret_cast<char*>(&region_->region()) + root_offset_);
  }
  void SetRoot(T* root) {
    root_offset_ = reinterpret_cast<char*>(root) - reinterpret_cast<char*>(&region_->region());
  }
  [[noreturn]] static void DieEmpty() {
    internal::Fatal(__FILE__, __LINE__, "use of an empty, moved-from or freed broom::Message");
  }

  // Optional so that an empty Message holds no region; moved-from optionals keep a
  // TRANSFERRED handle, which reports misuse by name.
  std::optional<TransferableRegion> region_;
  // The root as an offset from the Region object, so that a Message kept in an actor region
  // holds only a handle (a pointer to the Region object) and no pointer into the message:
  // the outlives check (check.h) then sees exactly what the rules allow. Never 0 when set:
  // the root lives after the Region object.
  ptrdiff_t root_offset_ = 0;
};

}  // namespace broom

#endif  // BROOM_MESSAGE_H_
