/* Live-system paths the agent needs beyond builder/layout.h. They are
 * defined here only until layout.h has them (the #ifndef keeps layout.h the
 * one definition once it does). */
#pragma once
#include "layout.h"

#ifndef LAYOUT_LIVE_DLWS
#define LAYOUT_LIVE_DLWS "/usr/share/oem/dlws"
#endif
/* A file at LAYOUT_LIVE_DLWS/X may instead be at LAYOUT_LIVE_LARGE/X: large
 * files stay on the boot medium (base/README.md, "Large files"). */
#ifndef LAYOUT_LIVE_LARGE
#define LAYOUT_LIVE_LARGE "/usr/share/oem/dlws/large"
#endif

/* The agent's own working directory in the live system (tmpfs): where it
 * mounts the target's partitions. Not part of any contract. */
#define AGENT_RUN_DIR "/run/dlws-install"
