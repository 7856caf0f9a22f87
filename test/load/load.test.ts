/**
 * CI version of the load suite: 500 concurrent secure WebSocket channels on one node, each
 * handshaking (hybrid XXhfs) and exchanging direct messages; no errors, nothing acknowledged
 * lost, memory per channel reported. The full run (5,000) is `bun run test:load`.
 */
import { expect, test } from 'bun:test';
import { runLoad } from './scenarios.ts';

const connections = Number(process.env.SSC_LOAD_CI_CONNECTIONS ?? 500);

test(`${connections} concurrent secure channels handshake and exchange direct messages without loss`, async () => {
  const result = await runLoad({ connections, rounds: 3 });
  console.log(`load (CI): ${JSON.stringify(result)}`);
  expect(result.failedHandshakes).toBe(0);
  expect(result.connections).toBe(connections);
  expect(result.messages).toBe(connections * 3);
  expect(result.rejected).toBe(0);
  expect(result.lost).toBe(0);
  expect(result.clientErrors).toBe(0);
  expect(result.serverErrors).toBe(0);
  expect(result.ready).toBe(true);
  expect(result.kibPerConnection).toBeGreaterThan(0);
}, 90_000);
