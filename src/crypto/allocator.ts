/**
 * The C allocator of the process (glibc's malloc), which the native core, OpenSSL, SQLite and
 * V8's own threads share.
 *
 * glibc gives a thread that allocates while another holds the arena a new arena (up to 8 per
 * core), and memory freed into one stays there for that arena's next use. A KMS process has the
 * event loop, the store's writer thread and V8's helper threads all allocating: measured with
 * 100 000 CMKs after 10 000 distinct keys' worth of unwraps (`npm run bench:kms`), 255–317 MB
 * resident with the default, 223–269 MB with two arenas, the same throughput (the HTTP server's
 * 10-minute figure did not move: its memory is its isolates' heaps). `hsmkit serve` and the
 * benchmarks call this first thing; a program embedding the library decides for itself.
 */
import { addon } from "./addon.js";

/** Arenas a KMS process needs: one for the event loop, one for everything else. */
export const KMS_MALLOC_ARENAS = 2;

/**
 * Caps glibc's malloc arenas at `count` (1..64) for threads that allocate from now on (arenas
 * made before stay). Returns false where malloc is not glibc's (another C library, or an allocator
 * preloaded in its place such as ASan's), which leaves things as they are.
 */
export function limitMallocArenas(count: number = KMS_MALLOC_ARENAS): boolean {
  return addon.mallocArenaMax(count);
}
