#!/usr/bin/env bash
# Builds Broom (Release) and runs the default test suite (everything but the `stress` label).
# Installs missing Debian packages first. Usage: scripts/run-tests.sh [preset]  (default: release;
# also debug, asan, ubsan, tsan — see CMakePresets.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
preset="${1:-release}"
cmake --workflow --preset "$preset"
