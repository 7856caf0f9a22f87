/**
 * Signed grants for private topics: an issuer (this node, or a key configured in
 * `relay.grantIssuers`) signs `grantMessage(grant)` with ML-DSA-65; the relay accepts a grant
 * whose signature verifies under the issuer it names. The message is domain-separated
 * (`ssc-grant-v1`), so the signature uses the empty FIPS 204 context and the native signer.
 */
import { type Grant, grantMessage } from '../relay/protocol.ts';
import type { Signer } from '../crypto/types.ts';

export interface GrantRequest {
  topic: string;
  identity: string;
  rights: ('subscribe' | 'publish')[];
  /** Seconds since the Unix epoch. */
  exp: number;
  /** Fingerprint of the signing identity. */
  issuer: string;
}

/** Signs a grant with the issuer's ML-DSA-65 seed. */
export function signGrant(request: GrantRequest, signer: Signer, seed: Uint8Array): Grant {
  const signature = signer.sign(new TextEncoder().encode(grantMessage(request)), seed);
  return { ...request, sig: Buffer.from(signature).toString('base64') };
}

/** A `verifyGrant` for the relay: the issuer must be known, the signature must verify. */
export function createGrantVerifier(issuers: Map<string, Uint8Array>, signer: Signer) {
  return (grant: Grant): boolean => {
    const publicKey = issuers.get(grant.issuer);
    if (!publicKey) return false;
    const { sig, ...unsigned } = grant;
    return signer.verify(new Uint8Array(Buffer.from(sig, 'base64')), new TextEncoder().encode(grantMessage(unsigned)), publicKey);
  };
}
