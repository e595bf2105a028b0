#!/usr/bin/env bash
# asan-pass: no (agent/test-agent.sh runs the static agent; make agent-asan-check has its own sanitizer run)
# The install agent on fake roots, image files and loop devices:
# agent/test-agent.sh, its lines in the suite's PASS/FAIL form.
ROOT=${DLWS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
set -o pipefail
bash "$ROOT/agent/test-agent.sh" 2>&1 | sed -E 's/^(PASS|FAIL|SKIP): /\1 /'
