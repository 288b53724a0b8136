/**
 * Slots. Each holds one token unless the token was removed (fault injection), in which case
 * calls on it fail with CKR_TOKEN_NOT_PRESENT and its sessions with CKR_DEVICE_REMOVED.
 */
import type { Token } from "./token.js";

export class Slot {
  constructor(
    readonly id: number,
    readonly description: string,
    public token: Token | null,
    /** The token removed by a fault plan, kept for re-insertion. */
    public removed: Token | null = null,
  ) {}
}
