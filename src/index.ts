/**
 * The package's server-side entry (`streamlined-secure-comms`): start a node in-process, load
 * configuration, and reach the building blocks. Applications that only talk to a node import
 * `streamlined-secure-comms/client` instead.
 *
 * @example
 * import { loadConfig, startServer } from 'streamlined-secure-comms';
 * const node = await startServer(loadConfig({ overrides: { server: { port: 0 } } }));
 * console.log(node.urls.public);
 * await node.stop();
 */
export { type Config, ConfigError, loadConfig, redactConfig } from './config/index.ts';
export { createCrypto } from './crypto/index.ts';
export type { CryptoSuite } from './crypto/types.ts';
export { type RunningServer, startServer } from './server.ts';
export { version } from './version.ts';
