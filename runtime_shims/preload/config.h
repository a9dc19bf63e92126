// Copyright Broom authors.
//
// config.h: BROOM_CONF, the preload's configuration string.
//
//   Config      the parsed settings (plain value type).
//   ParseConf   parses "key:value,key:value". Pure: no allocation, no globals; warnings go to
//               a caller-supplied sink, so it is unit-tested directly.
//
// Keys (values in brackets are the defaults):
//   stats:0|1              print a summary to stderr at exit [0]
//   checks:0|1             diagnose pointers into destroyed regions in free/realloc [0]
//   bind:0|1               while no region exists and no stats/profile mode is on, bind the
//                          program's PLT slots for malloc/free/calloc/new/delete straight to
//                          jemalloc (bind.h); 0 keeps every call going through Broom's exports [1]
//   profile:FILE           allocation-lifetime profiler; writes FILE (JSON) and FILE.txt at
//                          exit. "%p" in FILE is replaced by the process id. [off]
//   group_window_us:N      profiler: frees of one site within N us are a group death [1000]
//   profile_top:N          profiler: sites in the readable summary [20]
// Separators: ',' between entries, ':' or '=' between key and value. Unknown keys, malformed
// entries and bad values give one warning each and are ignored; parsing never fails.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_CONFIG_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_CONFIG_H_

#include <cstddef>
#include <cstdint>

namespace broom::preload {

struct Config {
  bool stats = false;
  bool checks = false;
  bool bind = true;
  char profile_path[512] = {};  // empty: profiler off
  uint32_t group_window_us = 1000;
  uint32_t profile_top = 20;
};

// Receives one complete warning line (without "broom: " prefix or newline).
using WarnFn = void (*)(void* ctx, const char* message);

// Parses `text` (may be null) into *config, starting from its current values. Returns the
// number of warnings issued.
int ParseConf(const char* text, Config* config, WarnFn warn, void* ctx);

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_CONFIG_H_
