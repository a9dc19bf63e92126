// Copyright Broom authors.
//
// The options table (mimalloc's options.c is the model): one row per environment variable, all
// parsed together the first time any is read.
#include "alloc/os/options.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace broom::internal {

namespace {

struct Keyword {
  const char* text;
  int64_t value;
};

struct OptionRow {
  const char* name;
  int64_t default_value;
  int64_t min;  // numeric values must lie in [min, max]
  int64_t max;
  const Keyword* keywords;  // accepted words besides numbers, null-terminated; or null
  const char* expected;     // for the warning: what a valid value looks like
};

constexpr Keyword kCheckWords[] = {{"off", 0}, {"no", 0},   {"false", 0}, {"fatal", 1}, {"on", 1},
                                   {"yes", 1}, {"true", 1}, {"log", 2},   {nullptr, 0}};

constexpr Keyword kSwitchWords[] = {{"off", 0}, {"no", 0},   {"false", 0}, {"on", 1},
                                    {"yes", 1}, {"true", 1}, {nullptr, 0}};

// The address plan's defaults (docs/design.md): 32 slices of 64 GiB from 17 TiB, clear of PIE
// binaries (0x55...), the mmap area (0x7f...) and ASan's shadow (below 0x10007fff8000). The
// range's addresses have 0x11 or 0x12 in their sixth byte, a control character: text never
// reads as a pointer into it in the conservative scans of checked mode (a base at 32 TiB,
// 0x20..., made "hold " plus two NULs read as an address). ThreadSanitizer maps everything but
// a few application ranges, so its builds use 4 slices at the bottom of its high one ('~').
#if defined(__SANITIZE_THREAD__)
constexpr int64_t kPlanBaseGbDefault = 0x7e8000000000 >> 30;
constexpr int64_t kPlanProcessesDefault = 4;
#else
constexpr int64_t kPlanBaseGbDefault = 0x110000000000 >> 30;
constexpr int64_t kPlanProcessesDefault = 32;
#endif

// Indexed by Option. Defaults here are the documented ones (docs/tuning.md).
constexpr OptionRow kTable[] = {
    {"BROOM_RESERVE_GB", 64, 1, int64_t{1} << 16, nullptr, "an integer 1..65536"},
    {"BROOM_CHECKS", -1, 0, 2, kCheckWords, "0/off, 1/fatal, 2/log"},
    {"BROOM_QUARANTINE_MS", 0, 0, int64_t{1} << 31, nullptr, "milliseconds (0: off)"},
    {"BROOM_RETAINED_CAP_MB", 256, 0, int64_t{1} << 30, nullptr, "MiB"},
    {"BROOM_DECAY_MS", 1000, 0, int64_t{1} << 31, nullptr, "milliseconds"},
    {"BROOM_CHECK_HEAP", -1, 0, 1, kSwitchWords, "0/off or 1/on"},
    {"BROOM_CHECK_SENT", -1, 0, 1, kSwitchWords, "0/off or 1/on"},
    {"BROOM_PLAN_BASE_GB", kPlanBaseGbDefault, 1, (int64_t{1} << 17) - 1, nullptr,
     "GiB from address 0, 1..131071"},
    {"BROOM_PLAN_PROCESSES", kPlanProcessesDefault, 1, 4095, nullptr, "an integer 1..4095"},
    {"BROOM_PLAN_INDEX", 0, 0, 4094, nullptr, "an integer 0..4094"},
    {"BROOM_PLAN_SHARED", 0, 0, 1, kSwitchWords, "0/off or 1/on"},
    {"BROOM_HUGE_PAGES", 0, 0, 1, kSwitchWords, "0/off or 1/on"},
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == static_cast<size_t>(Option::kCount),
              "one row per Option");

const OptionRow& Row(Option option) { return kTable[static_cast<int>(option)]; }

// Written to stderr without malloc: the table may be read inside malloc (preload library).
void Warn(const OptionRow& row, const char* text) {
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf),
                        "broom: warning: %s=%s is not valid (expected %s); using the default "
                        "(%lld)\n",
                        row.name, text, row.expected, static_cast<long long>(row.default_value));
  if (n <= 0) return;
  ssize_t ignored =
      write(STDERR_FILENO, buf,
            static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  (void)ignored;
}

struct Values {
  int64_t v[static_cast<int>(Option::kCount)];
};

Values ParseAll() {
  Values values;
  for (int i = 0; i < static_cast<int>(Option::kCount); ++i) {
    const OptionRow& row = kTable[i];
    values.v[i] = row.default_value;
    const char* text = std::getenv(row.name);
    if (text == nullptr) continue;
    int64_t parsed;
    if (options_internal::ParseOption(static_cast<Option>(i), text, &parsed)) {
      values.v[i] = parsed;
    } else {
      Warn(row, text);
    }
  }
  return values;
}

}  // namespace

namespace options_internal {

bool ParseOption(Option option, const char* text, int64_t* value) {
  const OptionRow& row = Row(option);
  if (row.keywords != nullptr) {
    for (const Keyword* k = row.keywords; k->text != nullptr; ++k) {
      if (strcasecmp(text, k->text) == 0) {
        *value = k->value;
        return true;
      }
    }
  }
  if (*text == '\0') return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < row.min || v > row.max) return false;
  *value = v;
  return true;
}

}  // namespace options_internal

int64_t GetOption(Option option) {
  static const Values values = ParseAll();  // thread-safe static init, no allocation
  return values.v[static_cast<int>(option)];
}

const char* OptionName(Option option) { return Row(option).name; }

}  // namespace broom::internal
