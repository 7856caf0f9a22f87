import { describe, expect, test } from 'bun:test';
import { repoRoot } from '../helpers/paths.ts';
import { generateProtocolVectors } from './protocol-vectors.ts';

describe('SSC protocol vectors (test/vectors/ssc-protocol.json)', () => {
  test('regenerating from the fixed keys and seeds gives the committed file byte for byte', async () => {
    const committed = await Bun.file(`${repoRoot}/test/vectors/ssc-protocol.json`).text();
    const fresh = `${JSON.stringify(await generateProtocolVectors(), null, 2)}\n`;
    expect(fresh).toBe(committed);
  });
});
