/**
 * Backend mixes from `src/crypto` for the channel tests: loaded only when the crypto room
 * exports its factories, so these tests run against every real backend once it exists.
 */
import type { TestSuite } from './fixtures.ts';

export function backendMixes(): TestSuite[] {
  return [];
}
