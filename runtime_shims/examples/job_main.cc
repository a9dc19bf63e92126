// Copyright Broom authors.
//
// broom_job: runs one example job and prints its result checksum, time, peak RSS and Broom
// statistics. `broom_job --help` prints the flags (kUsage below).
//
//   broom_job --job=join --engine=caf --threads=4 --policy=regions --epochs=40 --docs=500000
//   broom_job --job=aggregate --engine=direct --policy=heap --check
//   broom_job --job=wordcount --engine=caf --processes=2         (loopback, OS-chosen ports)
//
// `--broom-worker` is the worker-process mode the multi-process driver execs.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "broom/lifecycle/direct_driver.h"
#include "runtime_shims/examples/jobs.h"
#ifdef BROOM_HAVE_CAF
#include "broom/caf/runtime.h"
#endif
#ifdef BROOM_HAVE_GC_POLICY
#include "broom/lifecycle/gc_policy.h"
#endif

namespace {

using broom::lifecycle::JobOptions;
using broom::lifecycle::JobParams;
using broom::lifecycle::JobResult;

constexpr const char* kUsage = R"(usage: broom_job [--flag=value ...]
Runs one example job (runtime_shims/examples/jobs.h) and prints its result and statistics.
  --job=NAME        select | aggregate | join | wjoin | wordcount        (default select)
  --engine=NAME     direct (one thread, no engine) | caf                  (default direct)
  --policy=NAME     regions | heap | heap-glibc | gc (Boehm GC, if built) (default regions)
  --threads=N       CAF scheduler threads (0: CAF's default)
  --workers=N       instances per stage (default: --threads, or 2)
  --processes=N     CAF: run on N processes (default 1), on this machine unless --hosts
  --hosts=H1,H2,... CAF: the host of worker process 1, 2, ... (empty: this machine), started
                    there by --launcher with this binary at the same path; batches between
                    machines go in copy mode
  --launcher=CMD    the command that starts a worker on a host, its words split at spaces
                    (default "ssh -o BatchMode=yes"; called as CMD HOST COMMAND)
  --shared-memory=B CAF, several processes: 1 backs every process's slice with shared memory,
                    so batches cross by address with no copy; 0 copies their blocks once
                    (default 1, unless BROOM_PLAN_SHARED says otherwise)
  --credits=N       batches in flight per edge, 0 = unlimited             (default 16)
  --batch=N         records per batch                                     (default 1024)
  --timeout=S       give up after S seconds                               (default 300)
  --check           compare with the plain-loop reference; exit 1 if different
  --state-checks=W  checked mode (BROOM_CHECKS=1 or log): scan operator state
                    off | notify | callback      (default: BROOM_STATE_CHECKS, else notify)
  --kill-worker-after=S   testing: SIGKILL worker process 1 after S seconds
  --help            this text
Job parameters, as --name=value: epochs, docs, authors_min, authors_max, window, lines,
  words_per_line, vocabulary, select_mod, select_keep, title_min, title_max, chunk
  (defaults: the paper's scale, 40 epochs of 500000 documents).
Output: the job's totals, time, peak RSS, what each process created and freed, and one line
  "RESULT seconds=... peak_rss_kib=... checksum=..." for bench/tools/sidebyside.py.
)";

// The pieces of `s` between `sep`s (empty pieces too if keep_empty).
std::vector<std::string> Split(const std::string& s, char sep, bool keep_empty) {
  std::vector<std::string> out;
  size_t from = 0;
  for (;;) {
    const size_t at = s.find(sep, from);
    std::string piece = s.substr(from, at == std::string::npos ? std::string::npos : at - from);
    if (keep_empty || !piece.empty()) out.push_back(std::move(piece));
    if (at == std::string::npos) return out;
    from = at + 1;
  }
}

int Usage(const char* msg) {
  std::fprintf(stderr, "broom_job: %s\n%s", msg, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  broom::examples::RegisterExampleJobs();
#ifdef BROOM_HAVE_CAF
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--broom-worker") == 0) {
#ifdef BROOM_HAVE_GC_POLICY
      broom::lifecycle::RegisterGcPolicy();  // the coordinator names the policy later
#endif
      return broom::caf_shim::WorkerMain(argc, argv);
    }
  }
#endif
  std::string job = "select", engine = "direct";
  bool check = false;
  JobOptions opt;
  JobParams params;
  int workers = 0;
  int shared_memory = -1;  // --shared-memory: unset
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h") a = "--help";
    if (a.rfind("--", 0) != 0) return Usage(("unexpected argument " + a).c_str());
    if (a == "--check") {
      check = true;
      continue;
    }
    if (a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    }
    auto eq = a.find('=');
    if (eq == std::string::npos) return Usage(("flag needs a value: " + a).c_str());
    std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    try {
      if (k == "job")
        job = v;
      else if (k == "engine")
        engine = v;
      else if (k == "policy")
        opt.policy = v;
      else if (k == "threads")
        opt.threads = std::stoi(v);
      else if (k == "workers")
        workers = std::stoi(v);
      else if (k == "processes")
        opt.processes = std::stoi(v);
      else if (k == "shared-memory")
        shared_memory = std::stoi(v);
      else if (k == "hosts")
        opt.worker_hosts = Split(v, ',', /*keep_empty=*/true);
      else if (k == "launcher")
        opt.worker_launcher = Split(v, ' ', /*keep_empty=*/false);
      else if (k == "credits")
        opt.credits = static_cast<uint32_t>(std::stoul(v));
      else if (k == "batch")
        opt.batch_size = std::stoul(v);
      else if (k == "timeout")
        opt.timeout_seconds = std::stod(v);
      else if (k == "kill-worker-after")
        opt.kill_worker_after_seconds = std::stod(v);
      else if (k == "state-checks") {
        if (!broom::lifecycle::ParseStateChecks(v, &opt.state_checks)) {
          return Usage(("bad value in " + a + " (use off, notify or callback)").c_str());
        }
      } else
        params.Set(k, v);
    } catch (const std::exception&) {
      return Usage(("bad value in " + a).c_str());
    }
  }
  // Read when the first region is made, which is after this. An explicit BROOM_PLAN_SHARED in
  // the environment wins over the multi-process default, not over the flag.
  if (shared_memory >= 0) {
    setenv("BROOM_PLAN_SHARED", shared_memory != 0 ? "1" : "0", 1);
  } else if (opt.processes > 1) {
    setenv("BROOM_PLAN_SHARED", "1", 0);
  }
#ifdef BROOM_HAVE_GC_POLICY
  // Only when asked for: initializing the collector costs the other policies RSS.
  if (opt.policy == "gc") broom::lifecycle::RegisterGcPolicy();  // before other threads start
#endif
  if (workers == 0) workers = opt.threads > 0 ? opt.threads : 2;
  params.Set("workers", static_cast<uint64_t>(workers));

  std::printf("job=%s engine=%s policy=%s threads=%d processes=%d credits=%u batch=%zu params=%s\n",
              job.c_str(), engine.c_str(), opt.policy.c_str(), opt.threads, opt.processes,
              opt.credits, opt.batch_size, params.ToString().c_str());
  JobResult r;
  if (engine == "direct") {
    auto g = broom::lifecycle::BuildJob(job, params);
    if (!g) return Usage(("unknown job " + job).c_str());
    r = broom::lifecycle::RunDirect(*g, opt);
#ifdef BROOM_HAVE_CAF
  } else if (engine == "caf") {
    r = broom::caf_shim::RunJob(job, params, opt);
#endif
  } else {
    return Usage(("unknown or unavailable engine " + engine).c_str());
  }
  std::printf("%s", r.Summary().c_str());
  if (!r.ok) return 1;
  // One machine-readable line for bench/tools/sidebyside.py.
  std::string gc;
#ifdef BROOM_HAVE_GC_POLICY
  if (opt.policy == "gc") {
    gc = " gc_collections=" + std::to_string(broom::lifecycle::GcCollections()) +
         " gc_heap_bytes=" + std::to_string(broom::lifecycle::GcHeapBytes());
  }
#endif
  std::printf("RESULT seconds=%.6f peak_rss_kib=%ld checksum=%llu%s\n", r.seconds, r.peak_rss_kb,
              (unsigned long long)r.totals["checksum"], gc.c_str());
  if (check) {
    auto ref = broom::examples::ReferenceTotals(job, params);
    bool same = ref == r.totals;
    std::printf("check against reference: %s (records %llu, checksum %llu)\n",
                same ? "EQUAL" : "DIFFERENT", (unsigned long long)ref["records"],
                (unsigned long long)ref["checksum"]);
    if (!same) return 1;
  }
  return 0;
}
