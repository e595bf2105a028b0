/* The install log: every step goes to the console (stdout) as
 * "dlws-install: <step>" and is kept for LAYOUT_INSTALL_LOG on the target. */
#pragma once
#include <stdbool.h>

/* "dlws-install: <step>" */
void log_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "DLWS-INSTALL-ERROR: <reason>" on stderr (the console too). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line as it is ("DLWS-INSTALL: done on /dev/vdb"). */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The text kept so far (NUL-terminated; "" when nothing). The log is capped
 * at LOG_LIMIT bytes; later lines are counted but not kept. */
const char *log_text(void);
unsigned long log_length(void);
void log_release(void);
