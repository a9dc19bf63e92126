// Copyright Broom authors.
//
// broom/caf/runtime.h: runs a lifecycle job on the C++ Actor Framework 0.17 (one stateful actor
// per operator instance), in one process or over several (on this machine, or on the hosts of
// JobOptions::worker_hosts, started through JobOptions::worker_launcher). No CAF include here:
// CAF headers cost seconds per translation unit, so only the shim's .cc files include them.
//
//   RunJob(job, params, options)   the driver. Builds the graph of registered job `job`, spawns
//                                  every instance as an actor (instance i of every stage runs
//                                  in process i % options.processes; process 0 is this one),
//                                  wires them, waits for every instance to finish and returns
//                                  the summed reports. Errors (a lost peer, a timeout) come back
//                                  in JobResult::error within about a second, never as a hang.
//   WorkerMain(argc, argv)         the worker process (`<binary> --broom-worker`): opens a
//                                  middleman port on 127.0.0.1 (0.0.0.0 with
//                                  --broom-listen=0.0.0.0, as on another host; the port chosen
//                                  by the OS), prints
//                                  "BROOM_WORKER_PORT <port>" on stdout, hosts the instances the
//                                  driver spawns by name ("broom.instance"), and exits when its
//                                  stdin closes (the driver holds the other end).
//
// Several processes: the driver starts options.processes - 1 workers by executing
// options.worker_exe (default: the running executable) with --broom-worker, so a program that
// runs jobs on several processes calls WorkerMain from its main when it sees that flag:
//
//   int main(int argc, char** argv) {
//     broom::lifecycle::RegisterJob("my-job", &MyJob);  // in the driver and the workers
//     for (int i = 1; i < argc; ++i) {
//       if (std::strcmp(argv[i], "--broom-worker") == 0) {
//         return broom::caf_shim::WorkerMain(argc, argv);
//       }
//     }
//     ... broom::caf_shim::RunJob("my-job", params, options) ...
//   }
//
// Batches between processes (docs/design.md, "The CAF shim"): records that are not trivially
// copyable and have no codec (record.h) travel by address: the sending actor ships the batch's
// region (broom::Ship; shared mode when its slice is shared memory, which the driver passes on
// to its workers, else copy mode) and the receiver installs its blocks at the same addresses.
// Such jobs need options.policy "regions" on several processes; RunJob refuses them otherwise,
// before starting anything. Raw records travel as bytes (by address with shared memory);
// records with a codec through it. Loan
// notes ride on credits, punctuation and the instances' done messages; at the end of a job the
// driver's stats requests to each worker carry the notes left both ways, so every loan comes
// back before the workers' stats are read. Then (and when a job fails) the driver forgets its
// workers (broom::ForgetPeer), taking back what is still lent (a lost worker's loans).
//
// Engine threads: each instance's callbacks run on whichever CAF scheduler thread runs its actor
// for that message (max-threads = options.threads). Batches arriving from another process are
// deserialized on a middleman thread (installed at their addresses, or rebuilt in a fresh
// message arena) before delivery.
//
// Thread-safety: RunJob may be called from any thread, one job at a time per process (the
// receive-side memory policy is process-wide). The job's operators and record types must be
// registered (RegisterJob) in the driver and in the worker binary alike.
#ifndef BROOM_CAF_RUNTIME_H_
#define BROOM_CAF_RUNTIME_H_

#include <string>

#include "broom/lifecycle/graph.h"

namespace broom::caf_shim {

lifecycle::JobResult RunJob(const std::string& job, const lifecycle::JobParams& params,
                            const lifecycle::JobOptions& options);

int WorkerMain(int argc, char** argv);

}  // namespace broom::caf_shim

#endif  // BROOM_CAF_RUNTIME_H_
