// Copyright Broom authors.
#include "runtime_shims/preload/config.h"

#include <cstdio>
#include <cstring>

namespace broom::preload {

namespace {

bool ParseBool(const char* v, size_t n, bool* out) {
  if ((n == 1 && v[0] == '1') || (n == 4 && std::strncmp(v, "true", 4) == 0) ||
      (n == 2 && std::strncmp(v, "on", 2) == 0) || (n == 3 && std::strncmp(v, "yes", 3) == 0)) {
    *out = true;
    return true;
  }
  if ((n == 1 && v[0] == '0') || (n == 5 && std::strncmp(v, "false", 5) == 0) ||
      (n == 3 && std::strncmp(v, "off", 3) == 0) || (n == 2 && std::strncmp(v, "no", 2) == 0)) {
    *out = false;
    return true;
  }
  return false;
}

bool ParseUint(const char* v, size_t n, uint32_t max, uint32_t* out) {
  if (n == 0 || n > 10) return false;
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i) {
    if (v[i] < '0' || v[i] > '9') return false;
    x = x * 10 + static_cast<uint64_t>(v[i] - '0');
  }
  if (x > max) return false;
  *out = static_cast<uint32_t>(x);
  return true;
}

bool KeyIs(const char* k, size_t n, const char* name) {
  return std::strlen(name) == n && std::strncmp(k, name, n) == 0;
}

}  // namespace

int ParseConf(const char* text, Config* config, WarnFn warn, void* ctx) {
  if (text == nullptr) return 0;
  int warnings = 0;
  char msg[256];
  auto Warn = [&](const char* what, const char* s, size_t n) {
    std::snprintf(msg, sizeof(msg), "BROOM_CONF: %s '%.*s' (ignored)", what,
                  static_cast<int>(n > 100 ? 100 : n), s);
    if (warn != nullptr) warn(ctx, msg);
    ++warnings;
  };
  const char* p = text;
  while (*p != '\0') {
    const char* entry = p;
    while (*p != '\0' && *p != ',') ++p;
    size_t len = static_cast<size_t>(p - entry);
    if (*p == ',') ++p;
    while (len > 0 && (*entry == ' ' || *entry == '\t')) ++entry, --len;
    while (len > 0 && (entry[len - 1] == ' ' || entry[len - 1] == '\t')) --len;
    if (len == 0) continue;
    size_t klen = 0;
    while (klen < len && entry[klen] != ':' && entry[klen] != '=') ++klen;
    if (klen == len) {
      Warn("entry without a value (expected key:value)", entry, len);
      continue;
    }
    const char* v = entry + klen + 1;
    size_t vlen = len - klen - 1;
    if (KeyIs(entry, klen, "stats")) {
      if (!ParseBool(v, vlen, &config->stats)) Warn("stats expects 0 or 1, got", v, vlen);
    } else if (KeyIs(entry, klen, "bind")) {
      if (!ParseBool(v, vlen, &config->bind)) Warn("bind expects 0 or 1, got", v, vlen);
    } else if (KeyIs(entry, klen, "checks")) {
      if (!ParseBool(v, vlen, &config->checks)) Warn("checks expects 0 or 1, got", v, vlen);
    } else if (KeyIs(entry, klen, "profile")) {
      if (vlen == 0 || vlen >= sizeof(config->profile_path)) {
        Warn("profile expects a file name, got", v, vlen);
      } else {
        std::memcpy(config->profile_path, v, vlen);
        config->profile_path[vlen] = '\0';
      }
    } else if (KeyIs(entry, klen, "group_window_us")) {
      if (!ParseUint(v, vlen, 60u * 1000 * 1000, &config->group_window_us)) {
        Warn("group_window_us expects microseconds (0..60000000), got", v, vlen);
      }
    } else if (KeyIs(entry, klen, "profile_top")) {
      if (!ParseUint(v, vlen, 100000, &config->profile_top)) {
        Warn("profile_top expects a count, got", v, vlen);
      }
    } else {
      Warn("unknown key (known: stats, checks, bind, profile, group_window_us, profile_top)", entry,
           klen);
    }
  }
  return warnings;
}

}  // namespace broom::preload
