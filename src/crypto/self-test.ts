/**
 * Startup known-answer tests: one per primitive per backend, against published values
 * (`kat.ts`). A failure marks the crypto component `down` (see issue 3): the caller refuses to
 * open channels. Each check is small (≈ one operation), so the whole run takes milliseconds,
 * dominated by ML-DSA on the noble backend.
 */
import { aesGcmKat, chachaPolyKat, digestAbcKat, hkdfKat, hmacJefeKat, mlDsaKat, mlKemKat, x25519Kat, xchachaPolyKat } from './kat.ts';
import { createHkdf } from './hash.ts';
import { createNobleHash } from './hash.ts';
import type { Aead, AsyncKem, BackendName, Dh, Hash, Kem, SelfTestResult, Signer } from './types.ts';
import { bytesToHex, concatBytes, equalBytes, hexToBytes } from './util.ts';

const h = hexToBytes;
const sha256hex = (bytes: Uint8Array) => bytesToHex(createNobleHash('SHA256').digest(bytes));

function check(primitive: string, backend: BackendName, fn: () => boolean | void): SelfTestResult {
  try {
    const ok = fn() !== false;
    return ok ? { primitive, backend, ok } : { primitive, backend, ok, error: 'known answer mismatch' };
  } catch (error) {
    return { primitive, backend, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** AEAD: seal gives the known ciphertext ‖ tag, open restores the message, a flipped tag bit fails. */
export function selfTestAead(aead: Aead): SelfTestResult {
  const kat = aead.name === 'ChaChaPoly' ? chachaPolyKat : aead.name === 'XChaChaPoly' ? xchachaPolyKat : aesGcmKat;
  return check(aead.name, aead.backend, () => {
    const key = h(kat.key), nonce = h(kat.iv), aad = h(kat.aad), msg = h(kat.msg);
    const expected = concatBytes(h(kat.ct), h(kat.tag));
    const sealed = aead.seal(key, nonce, msg, aad);
    if (!equalBytes(sealed, expected)) return false;
    const opened = aead.open(key, nonce, expected, aad);
    if (!opened || !equalBytes(opened, msg)) return false;
    const bad = expected.slice();
    bad[bad.length - 1]! ^= 1;
    return aead.open(key, nonce, bad, aad) === null;
  });
}

/** X25519: RFC 7748 §5.2. */
export function selfTestDh(dh: Dh): SelfTestResult {
  return check('X25519', dh.backend, () => equalBytes(dh.dh(h(x25519Kat.scalar), h(x25519Kat.u)), h(x25519Kat.out)));
}

/** ML-KEM-768: keygen from seed gives the known key; decapsulation gives the known secret. */
export function selfTestKem(kem: Kem): SelfTestResult {
  return check('MLKEM768', kem.backend, () => {
    const { publicKey, secretKey } = kem.generateKeyPair(h(mlKemKat.seed));
    if (sha256hex(publicKey) !== mlKemKat.ekSha256) return false;
    return equalBytes(kem.decapsulate(h(mlKemKat.c), secretKey), h(mlKemKat.K));
  });
}

/** The async ML-KEM-768 (WebCrypto) against the same known answers. */
export async function selfTestKemAsync(kem: AsyncKem): Promise<SelfTestResult> {
  try {
    const { publicKey, secretKey } = kem.generateKeyPair(h(mlKemKat.seed));
    if (sha256hex(publicKey) !== mlKemKat.ekSha256) return { primitive: 'MLKEM768-async', backend: kem.backend, ok: false, error: 'known answer mismatch' };
    const k = await kem.decapsulate(h(mlKemKat.c), secretKey);
    return equalBytes(k, h(mlKemKat.K))
      ? { primitive: 'MLKEM768-async', backend: kem.backend, ok: true }
      : { primitive: 'MLKEM768-async', backend: kem.backend, ok: false, error: 'known answer mismatch' };
  } catch (error) {
    return { primitive: 'MLKEM768-async', backend: kem.backend, ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * ML-DSA-65: keygen from seed gives the known public key, a known signature verifies, a
 * modified one does not, and a fresh signature verifies. (Signing is hedged, so its bytes are
 * not a known answer; `deterministicSigner` compares them when the backend can sign with rnd = 0.)
 */
export function selfTestSigner(signer: Signer, deterministicSigner?: Signer): SelfTestResult {
  return check('MLDSA65', signer.backend, () => {
    const { publicKey, secretKey } = signer.generateKeyPair(h(mlDsaKat.seed));
    if (sha256hex(publicKey) !== mlDsaKat.seedPublicKeySha256) return false;
    const pk = h(mlDsaKat.publicKey), msg = h(mlDsaKat.msg), sig = h(mlDsaKat.sig);
    if (!signer.verify(sig, msg, pk)) return false;
    const bad = sig.slice();
    bad[100]! ^= 1;
    if (signer.verify(bad, msg, pk)) return false;
    const fresh = signer.sign(h(mlDsaKat.signMsg), secretKey);
    if (!signer.verify(fresh, h(mlDsaKat.signMsg), publicKey)) return false;
    if (deterministicSigner) {
      return sha256hex(deterministicSigner.sign(h(mlDsaKat.signMsg), secretKey)) === mlDsaKat.signSigSha256;
    }
    return true;
  });
}

/** Hash: digest of "abc"; HMAC (SHA-2): RFC 4231 case 2; HKDF-SHA256: RFC 5869 A.1. */
export function selfTestHash(hash: Hash): SelfTestResult {
  return check(hash.name, hash.backend, () => {
    if (bytesToHex(hash.digest(new TextEncoder().encode('abc'))) !== digestAbcKat[hash.name]) return false;
    if (hash.name === 'SHA256' || hash.name === 'SHA512') {
      const mac = hash.hmac(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?'));
      if (bytesToHex(mac) !== hmacJefeKat[hash.name]) return false;
    }
    if (hash.name === 'SHA256') {
      const kdf = createHkdf(hash);
      const prk = kdf.extract(h(hkdfKat.salt), h(hkdfKat.ikm));
      if (bytesToHex(prk) !== hkdfKat.prk) return false;
      if (bytesToHex(kdf.expand(prk, h(hkdfKat.info), 42)) !== hkdfKat.okm) return false;
    }
    return true;
  });
}

/** Everything a backend set offers; absent entries are skipped. */
export interface SelfTestTargets {
  aeads?: Aead[];
  dhs?: Dh[];
  kems?: Kem[];
  signers?: { signer: Signer; deterministic?: Signer }[];
  hashes?: Hash[];
}

/** Runs every known-answer test for the given primitives. */
export function runSelfTests(targets: SelfTestTargets): SelfTestResult[] {
  return [
    ...(targets.aeads ?? []).map(selfTestAead),
    ...(targets.dhs ?? []).map(selfTestDh),
    ...(targets.kems ?? []).map(selfTestKem),
    ...(targets.signers ?? []).map((s) => selfTestSigner(s.signer, s.deterministic)),
    ...(targets.hashes ?? []).map(selfTestHash),
  ];
}
