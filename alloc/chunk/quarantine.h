// Copyright Broom authors. Layer 1 (chunk): quarantine of freed blocks.
//
// In quarantine mode a released block is not reused at once: it is made inaccessible with
// mprotect(PROT_NONE) for `duration_ms` (or until `max_bytes` are quarantined), so a stale read
// or write through a pointer into a freed region faults. A SIGSEGV handler recognizes faults in
// quarantined pages and reports the freed region by id, name and kind before aborting; other
// faults go to the previous handler. Off by default; public switch in broom/check.h.
#ifndef BROOM_ALLOC_CHUNK_QUARANTINE_H_
#define BROOM_ALLOC_CHUNK_QUARANTINE_H_

#include "broom/internal/block.h"

namespace broom::internal {

// Takes `block` (owner cleared, uncharged) into quarantine and returns true, or returns false
// if quarantine is off (then the caller frees it normally). Releases expired blocks through
// ReturnFreeBlock.
bool QuarantineAdmit(BlockHeader* block);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_QUARANTINE_H_
