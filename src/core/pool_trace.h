/* A measuring build's record of parallel loops (make pool-trace: -DDT_POOL_TRACE), for
 * judging two-thread scaling on a machine whose second core is often busy: wall time then
 * measures the contention, but each part's thread CPU time does not. Per loop body it sums
 * the loops' longest part (what the loop would take on free cores, the fork aside), all parts
 * (the work), and the owner's CPU time inside the loops; a loop run inline counts its time in
 * all three. DT_POOL_TRACE=<file> at exit writes one line per body, addresses relative to the
 * library (addr2line -f -e libductile.so). dt_pool_trace_reset() (exported) drops what was
 * recorded (the warm-up). Nothing of this is in the normal build. */
#ifndef DT_POOL_TRACE_H
#define DT_POOL_TRACE_H

#include <stdint.h>

int64_t dt_trace_cpu_ns(void);
int64_t dt_trace_wall_ns(void);
/* The owner, before it publishes a loop of `parts` parts (or threads, a fine loop). */
void dt_trace_loop_begin(int parts);
/* Around a part (a fine loop's range), by the thread that runs it: then its CPU time, added to
 * the part's (the thread's). */
void dt_trace_enter_part(void);
void dt_trace_part(int part, int64_t ns);
/* The owner, once every part of a loop of `parts` parts is done; owner_ns: its CPU time in
 * it, wall_ns: the loop's wall time (against the longest part: the fork and join). */
void dt_trace_loop(const void *fn, int parts, int64_t owner_ns, int64_t wall_ns);
/* A loop run inline: begin (from dt_trace_inline_begin, before it) separates the loops it ran. */
int64_t dt_trace_inline_begin(void);
void dt_trace_inline(const void *fn, int64_t begin, int64_t ns);

#endif
