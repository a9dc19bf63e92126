#!/bin/sh
# Stands in for ssh in the CAF shim's tests (JobOptions::worker_launcher): called as
# `fake_launcher.sh HOST COMMAND`, it appends HOST to the file $BROOM_TEST_LAUNCH_LOG and runs
# the shell command COMMAND here, as ssh would run it on HOST.
echo "$1" >> "${BROOM_TEST_LAUNCH_LOG:-/dev/null}"
exec /bin/sh -c "$2"
