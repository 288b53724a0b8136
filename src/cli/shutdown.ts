/**
 * How `hsmkit serve` stops on SIGINT or SIGTERM: the first signal closes gracefully; a second
 * exits at once; and a close that never ends — a KMS call waiting for a disk or an HSM that no
 * longer answers — is given up after a deadline instead of leaving the process alive until someone
 * sends a second signal (a service manager waits for its stop timeout, then SIGKILLs it). Giving up
 * loses nothing acknowledged: a write is acknowledged only once it is on disk, and the store
 * recovers from its write-ahead log at the next start.
 */

/** What the graceful close may take beyond server.shutdownTimeoutMs: the store's last commit and checkpoint, the token's close. */
export const CLOSE_GRACE_MS = 30_000;

export interface ShutdownOptions {
  /** The graceful close (RunningServer.close). */
  close: () => Promise<void>;
  /** How long close() may take before the process exits anyway, ms. */
  deadlineMs: number;
  log: {
    info: (message: string) => void;
    error: (message: string, error?: unknown) => void;
  };
  /** Exits with the code after flushing the log. */
  exit: (code: number) => void;
  /** Exits at once (a second signal). */
  exitNow: (code: number, message: string) => void;
}

/** The signal handler: first signal graceful (bounded by the deadline), second immediate. */
export function shutdownOnSignals(options: ShutdownOptions): (signal: NodeJS.Signals) => void {
  let stopping = false;
  return (signal) => {
    if (stopping) {
      options.exitNow(1, `hsmkit: ${signal} again: exiting without waiting for requests in flight\n`);
      return;
    }
    stopping = true;
    options.log.info(`${signal}: shutting down (requests in flight finish; ${signal} again to exit at once)`);
    let done = false;
    const deadline = setTimeout(() => {
      if (done) return;
      done = true;
      options.log.error(`shutdown did not finish within ${Math.round(options.deadlineMs / 1000)} s (a KMS call waits for the disk or the token): ` +
        "exiting without closing the store; every acknowledged write is on disk, and the next start recovers from the write-ahead log");
      options.exit(1);
    }, options.deadlineMs);
    options.close().then(
      () => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        options.log.info("stopped");
        options.exit(0);
      },
      (error: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        options.log.error("shutdown failed", error);
        options.exit(1);
      },
    );
  };
}
