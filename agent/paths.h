/* Paths of the agent itself; the payload contract is builder/layout.h. */
#pragma once
#include "layout.h"

/* The agent's own working directory in the live system (tmpfs): where it
 * mounts the target's partitions. Not part of any contract. */
#define AGENT_RUN_DIR "/run/dlws-install"
