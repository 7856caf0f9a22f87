/** Shared setup for channel tests: identities, keys and a handshake runner. */
import { fingerprintOf } from '../../src/channel/identity.ts';
import { createInitiator, createResponder, type HandshakeDriver, type InitiatorOptions, type ResponderOptions } from '../../src/channel/handshake.ts';
import type { TestSuite } from './fixtures.ts';

export function makeServer(suite: TestSuite, seed = 1) {
  const identity = suite.signer.generateKeyPair(new Uint8Array(32).fill(seed));
  const staticKey = suite.dh.generateKeyPair();
  return { identity, staticKey, fingerprint: fingerprintOf(identity.publicKey, suite.hash('SHA256')) };
}

export function makeClientIdentity(suite: TestSuite, seed = 2) {
  const identity = suite.signer.generateKeyPair(new Uint8Array(32).fill(seed));
  return { identity, fingerprint: fingerprintOf(identity.publicKey, suite.hash('SHA256')) };
}

/** Runs a handshake to completion, alternating writes and reads. */
export async function runHandshake(client: HandshakeDriver, server: HandshakeDriver): Promise<void> {
  let from = client;
  let to = server;
  for (let i = 0; i < 4 && !(client.isComplete && server.isComplete); i++) {
    await to.readMessage(await from.writeMessage());
    [from, to] = [to, from];
  }
}

export async function connect(
  clientSuite: TestSuite,
  serverSuite: TestSuite,
  client: Partial<InitiatorOptions> = {},
  server: Partial<ResponderOptions> = {},
) {
  const keys = makeServer(serverSuite);
  const c = createInitiator({ crypto: clientSuite, serverFingerprint: keys.fingerprint, serverStaticKey: keys.staticKey.publicKey, ...client });
  const s = createResponder({ crypto: serverSuite, staticKey: keys.staticKey, identity: keys.identity, ...server });
  await runHandshake(c, s);
  return { client: c, server: s, keys };
}
