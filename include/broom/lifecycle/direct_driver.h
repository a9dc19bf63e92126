// Copyright Broom authors.
//
// direct_driver.h: runs a job on the calling thread, without any engine (the single-threaded
// emulation of Naiad vertices used by the Broom paper's evaluation).
//
//   RunDirect(graph, options)   builds every instance of every stage, delivers batches,
//                               punctuations and credits through one FIFO queue on the calling
//                               thread until every instance has finished, destroys the
//                               instances and the thread's scratch, and returns the totals.
//
// The same Instance logic (scratch per callback, per-timestamp state, credits) runs as under
// CAF, so results must match. Thread-safety: uses only the calling thread; the Graph must not
// change during the run. options.threads/processes are ignored.
#ifndef BROOM_LIFECYCLE_DIRECT_DRIVER_H_
#define BROOM_LIFECYCLE_DIRECT_DRIVER_H_

#include "broom/lifecycle/graph.h"

namespace broom::lifecycle {

JobResult RunDirect(const Graph& graph, const JobOptions& options);

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_DIRECT_DRIVER_H_
