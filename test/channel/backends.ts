/**
 * Backend mixes from `src/crypto` for the channel tests, so the Noise core, the vectors and the
 * hybrid handshake are checked against every real backend: native (node:crypto X25519, ML-DSA,
 * AES-GCM, SHA-2, and WebCrypto's async ML-KEM-768 as `kemAsync`, which the handshake drivers
 * prefer) with the WASM ChaCha20-Poly1305, and the src/crypto noble backend. `kem` stays noble
 * in the native mix for the synchronous Noise API (cacophony), which has no KEM tokens anyway.
 */
import { createNativeBackend, createNobleBackend, loadWasmAeadSync } from '../../src/crypto/index.ts';
import type { TestSuite } from './fixtures.ts';

export function backendMixes(): TestSuite[] {
  const noble = createNobleBackend();
  const native = createNativeBackend();
  const wasm = loadWasmAeadSync();
  return [
    {
      label: 'native+wasm',
      dh: native.dh,
      kem: noble.kem, // Bun 1.4.5 has no synchronous native ML-KEM (see src/crypto/index.ts)
      kemAsync: native.kemAsync,
      signer: native.signer,
      chachaPoly: wasm.chachaPoly,
      aesGcm: native.aesGcm,
      hash: (name) => native.hash(name) ?? noble.hash(name),
    },
    { label: 'crypto-noble', dh: noble.dh, kem: noble.kem, signer: noble.signer, chachaPoly: noble.chachaPoly, aesGcm: noble.aesGcm, hash: noble.hash },
  ];
}
