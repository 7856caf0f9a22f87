import { describe, expect, test } from 'bun:test';
import { parseProtocolName } from '../../src/channel/noise/protocol.ts';
import { BASE_PATTERN_NAMES, formatPattern, resolvePattern } from '../../src/channel/noise/patterns.ts';
import { readVectors } from '../helpers/paths.ts';
import { type TestSuite, nobleSuite } from './fixtures.ts';
import { type CacophonyVector, runCacophonyVector } from './noise-vectors.ts';
import { backendMixes } from './backends.ts';

const { vectors } = await readVectors<{ vectors: CacophonyVector[] }>('noise/cacophony.json');
const vectors25519 = vectors.filter((v) => v.protocol_name.split('_')[2] === '25519');

function runAll(suite: TestSuite) {
  const failures: string[] = [];
  let pass = 0;
  for (const v of vectors25519) {
    let reason: string | null;
    try {
      reason = runCacophonyVector(v, suite);
    } catch (error) {
      reason = `threw ${(error as Error).message}`;
    }
    if (reason === null) pass++;
    else failures.push(`${v.protocol_name}: ${reason}`);
  }
  return { pass, failures };
}

describe('cacophony vectors (Noise rev 34)', () => {
  test('there are 472 25519 vectors over 59 patterns, and every pattern is implemented', () => {
    expect(vectors25519.length).toBe(472);
    const patterns = new Set(vectors25519.map((v) => v.protocol_name.split('_')[1]));
    expect(patterns.size).toBe(59);
    for (const p of patterns) expect(resolvePattern(p)).not.toBeNull();
  });

  for (const suite of [nobleSuite(), ...backendMixes()]) {
    test(`all 472 25519 vectors pass (${suite.label})`, () => {
      const { pass, failures } = runAll(suite);
      expect(failures).toEqual([]);
      expect(pass).toBe(472);
    });
  }
});

describe('protocol names and patterns', () => {
  test('parses names with modifiers and the HFS DH form', () => {
    const p = parseProtocolName('Noise_XXhfs_25519+MLKEM768_ChaChaPoly_SHA256');
    expect(p?.pattern.hfs).toBe(true);
    expect(p?.kem).toBe('MLKEM768');
    expect(parseProtocolName('Noise_XXpsk3_25519_AESGCM_BLAKE2b')?.pattern.psk).toBe(true);
    expect(parseProtocolName('Noise_NNpsk0+psk2_25519_ChaChaPoly_SHA512')?.pattern.messages[1]).toEqual(['e', 'ee', 'psk']);
    for (const bad of [
      'Noise_XX_448_ChaChaPoly_SHA256',
      'Noise_XXhfs_25519_ChaChaPoly_SHA256',
      'Noise_XX_25519+MLKEM768_ChaChaPoly_SHA256',
      'Noise_XX_25519_XChaChaPoly_SHA256',
      'Noise_XX_25519_ChaChaPoly_MD5',
      'Noise_XXpsk4_25519_ChaChaPoly_SHA256',
      'Noise_Nhfs_25519+MLKEM768_ChaChaPoly_SHA256',
      'Noise_ZZ_25519_ChaChaPoly_SHA256',
      'Noise_XX_25519_ChaChaPoly',
      'noise_XX_25519_ChaChaPoly_SHA256',
    ]) {
      expect(parseProtocolName(bad)).toBeNull();
    }
  });

  test('the HFS modifier places e1 and ekem1 as the HFS spec says', () => {
    expect(formatPattern(resolvePattern('XXhfs')!)).toBe('-> e, e1\n<- e, ee, ekem1, s, es\n-> s, se');
    expect(formatPattern(resolvePattern('NKhfs')!)).toBe('<- s\n...\n-> e, es, e1\n<- e, ee, ekem1');
    expect(formatPattern(resolvePattern('XXhfs+psk2')!)).toBe('-> e, e1\n<- e, ee, ekem1, s, es, psk\n-> s, se');
  });

  test('the table has the 15 fundamental and 23 deferred patterns', () => {
    expect(BASE_PATTERN_NAMES.length).toBe(38);
  });
});
