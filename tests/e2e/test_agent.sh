#!/usr/bin/env bash
# The install agent on fake roots, image files and loop devices:
# tests/agent/test-agent.sh, its lines in the suite's PASS/FAIL form. In the
# suite's ASan pass it runs the ASan/UBSan build of the agent (dynamic, so
# the checks that need the static binary say SKIP there).
ROOT=${DLWS_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
set -o pipefail
if [ -n "${DLWS_ASAN_PASS:-}" ]; then
	export DLWS_INSTALL=$ROOT/out/agent/asan/dlws-install DLWS_INSTALL_DYNAMIC=1
fi
# The checks that need the static binary ran in the plain pass already.
static_only='static binary|binary is dynamic|DLWS_INSTALL_DYNAMIC'
bash "$ROOT/tests/agent/test-agent.sh" 2>&1 | sed -E 's/^(PASS|FAIL|SKIP): /\1 /' |
	if [ -n "${DLWS_ASAN_PASS:-}" ]; then sed -E "/^SKIP .*($static_only)/s/^SKIP /ran in the plain pass: /"; else cat; fi
