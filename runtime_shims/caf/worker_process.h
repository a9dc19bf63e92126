// Copyright Broom authors. Internal to the CAF shim: the driver's worker processes.
//
// The driver of a multi-process job starts each worker as `exe --broom-worker` with the job's
// address plan in its environment (on another host: through a launcher such as ssh, the plan
// in the command), reads the port and identity line it prints, and stops it by closing its
// stdin.
//
// Thread-safety: thread-compatible; the driver's job thread calls these.
#ifndef BROOM_RUNTIME_SHIMS_CAF_WORKER_PROCESS_H_
#define BROOM_RUNTIME_SHIMS_CAF_WORKER_PROCESS_H_

#include <sys/types.h>

#include <caf/node_id.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "broom/ship.h"

namespace broom::caf_shim {

// A worker process as the driver sees it. Owned by the driver's RunJob, which stops it
// (StopWorkers) before returning.
struct Worker {
  pid_t pid = -1;
  int stdin_fd = -1;
  uint16_t port = 0;
  caf::node_id node;
};

// The environment of worker `index`: this process's, with the job's address plan and the
// worker's slice in place of any BROOM_PLAN_* / BROOM_RESERVE_GB of our own.
std::vector<std::string> WorkerEnvironment(const AddressPlan& plan, uint32_t index);

// What the worker's first line must say besides its port: the driver's build id and the plan
// with the worker's slice.
std::string WorkerIdentity(const AddressPlan& plan);

// The shell command that runs worker `index` on another host: `env` with the BROOM_* variables
// of this process (but the plan's) and the job's plan without shared memory (BROOM_PLAN_SHARED
// unset), then `exe --broom-worker --threads=<threads> --broom-listen=0.0.0.0`, every word
// single-quoted.
std::string RemoteWorkerCommand(const std::string& exe, int threads, const AddressPlan& plan,
                                uint32_t index);

// Where and how a worker starts: on this machine (host empty) or on `host` through `launcher`
// (JobOptions::worker_hosts, worker_launcher).
struct WorkerPlace {
  std::string host;
  std::vector<std::string> launcher;
};

// Starts `exe --broom-worker` as slice `index` of `plan` at `place` and reads the port it
// prints; empty error on success. The worker must run this binary and sit at the plan.
std::string LaunchWorker(const std::string& exe, int threads, const AddressPlan& plan,
                         uint32_t index, const WorkerPlace& place, Worker& w);

// Closes each worker's stdin (it exits) and waits up to 3 s for all, killing those left.
void StopWorkers(std::vector<Worker>& workers);

}  // namespace broom::caf_shim

#endif  // BROOM_RUNTIME_SHIMS_CAF_WORKER_PROCESS_H_
