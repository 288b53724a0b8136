// The malloc arena cap (src/crypto/allocator.ts): glibc's malloc takes it, any other says it did not,
// and a count outside 1..64 is refused before it reaches the allocator.
import test from "ava";
import { addon } from "../../src/crypto/addon.js";
import { KMS_MALLOC_ARENAS, limitMallocArenas } from "../../src/crypto/allocator.js";

const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;

// A malloc preloaded in glibc's place (ASan's, for the sanitizer runs; jemalloc) has no arenas to cap.
const replaced = (process.env["LD_PRELOAD"] ?? "") !== "";

test("glibc takes the cap; another allocator reports that it did not", (t) => {
  t.is(limitMallocArenas(), glibc && !replaced);
  t.is(limitMallocArenas(KMS_MALLOC_ARENAS + 2), glibc && !replaced);
  t.is(KMS_MALLOC_ARENAS, 2);
});

test("a count outside 1..64 or not an integer is refused", (t) => {
  for (const count of [0, 65, 1.5, -1, Number.NaN]) {
    t.throws(() => limitMallocArenas(count), { code: "ERR_NATIVE_INVALID_ARGUMENT" }, String(count));
  }
  t.throws(() => addon.mallocArenaMax("2" as unknown as number), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
});
