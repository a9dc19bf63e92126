// Copyright Broom authors.
//
// jobs.h: the example jobs, shared by tests and benchmarks.
//
//   select     docs -> Select(id % select_mod < select_keep, in place, forwarded) -> sink
//   aggregate  docs -Exchange(author)-> Aggregate(sum of length per author, per epoch) -> sink
//   join       docs, authors -Exchange(author)-> Join(per epoch, symmetric hash join) -> sink
//   wordcount  lines -> Tokenize -Exchange(word)-> Count(per epoch) -> sink
//   wjoin      docs, authors -Exchange(author)-> windowed join: documents of epoch t join
//              authors of epochs t-window+1 .. t; per-epoch state lives `window` epochs
//
// Parameters (JobParams): workers (instances per stage, default 2), epochs, docs, authors_min,
// authors_max, window, lines, words_per_line, vocabulary, select_mod, select_keep. Every sink
// reports "records" and "checksum" (a wrapping sum of RecordHash over its records), so results
// compare exactly regardless of engine, partitioning and order.
//
// Thread-safety: RegisterExampleJobs is idempotent and thread-safe; ReferenceTotals is pure.
#ifndef BROOM_RUNTIME_SHIMS_EXAMPLES_JOBS_H_
#define BROOM_RUNTIME_SHIMS_EXAMPLES_JOBS_H_

#include <map>
#include <string>

#include "broom/lifecycle/graph.h"
#include "runtime_shims/examples/records.h"

namespace broom::examples {

void RegisterExampleJobs();
DataSpec SpecFrom(const lifecycle::JobParams& params);
// The totals a correct run of `job` reports, computed by plain loops without any shim.
std::map<std::string, uint64_t> ReferenceTotals(const std::string& job,
                                                const lifecycle::JobParams& params);

}  // namespace broom::examples

#endif  // BROOM_RUNTIME_SHIMS_EXAMPLES_JOBS_H_
