/**
 * The quantum core's door: the analytic decoy-state BB84 model, the Monte Carlo link simulator
 * (WASM, with a plain TypeScript reference), post-processing, key pools, the link manager, the
 * ETSI GS QKD 014 routes and the `ssc qkd` command handlers.
 */
export { cascade, type CascadeOptions, type CascadeResult } from './cascade.ts';
export { runQkdCommand } from './cli.ts';
export {
  bearerSaeResolver,
  createQkdRoutes,
  etsiMessages,
  type QkdApiConfig,
  type QkdRoutesDeps,
} from './etsi014.ts';
export {
  createLinkManager,
  type LinkManager,
  type LinkManagerOptions,
  type LinkStats,
  type QkdConfig,
  type QkdLinkConfig,
} from './link-manager.ts';
export * from './model.ts';
export {
  type AbortReason,
  type BlockOptions,
  type BlockResult,
  type Engine,
  runBlock,
  runMonteCarlo,
  type RunStats,
  wilsonUpper,
} from './pipeline.ts';
export { createKeyPoolManager, type DeliveredKey, type KeyPool, type KeyPoolManager } from './pool.ts';
export { buildTables, type SimParams } from './tables.ts';
export { toeplitzHash, toeplitzNaive } from './toeplitz.ts';
