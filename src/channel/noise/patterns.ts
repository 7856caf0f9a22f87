/**
 * Noise handshake patterns (Noise Protocol Framework rev 34 §7), written in the spec's own
 * notation and parsed once at load, plus the `psk` (§9) and `hfs` (Noise HFS extension §5)
 * modifiers applied as pattern transformations.
 */

export type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk' | 'e1' | 'ekem1';

export interface HandshakePattern {
  /** Full pattern name incl. modifiers, as in the protocol name (`XXhfs+psk2`). */
  readonly name: string;
  /** Fundamental or deferred base pattern (`XX`, `X1K1`). */
  readonly base: string;
  /** Pre-message tokens sent by the initiator / responder (§7.1): subsets of ['e', 's']. */
  readonly initiatorPre: readonly Token[];
  readonly responderPre: readonly Token[];
  /** Message patterns; even indices are written by the initiator. */
  readonly messages: readonly (readonly Token[])[];
  readonly oneWay: boolean;
  readonly psk: boolean;
  readonly hfs: boolean;
}

/** §7.4 one-way, §7.5 fundamental interactive, §7.6 deferred patterns, verbatim spec notation. */
const PATTERN_TEXT = `
N:
  <- s
  ...
  -> e, es
K:
  -> s
  <- s
  ...
  -> e, es, ss
X:
  <- s
  ...
  -> e, es, s, ss
NN:
  -> e
  <- e, ee
NK:
  <- s
  ...
  -> e, es
  <- e, ee
NX:
  -> e
  <- e, ee, s, es
XN:
  -> e
  <- e, ee
  -> s, se
XK:
  <- s
  ...
  -> e, es
  <- e, ee
  -> s, se
XX:
  -> e
  <- e, ee, s, es
  -> s, se
KN:
  -> s
  ...
  -> e
  <- e, ee, se
KK:
  -> s
  <- s
  ...
  -> e, es, ss
  <- e, ee, se
KX:
  -> s
  ...
  -> e
  <- e, ee, se, s, es
IN:
  -> e, s
  <- e, ee, se
IK:
  <- s
  ...
  -> e, es, s, ss
  <- e, ee, se
IX:
  -> e, s
  <- e, ee, se, s, es
NK1:
  <- s
  ...
  -> e
  <- e, ee, es
NX1:
  -> e
  <- e, ee, s
  -> es
X1N:
  -> e
  <- e, ee
  -> s
  <- se
X1K:
  <- s
  ...
  -> e, es
  <- e, ee
  -> s
  <- se
XK1:
  <- s
  ...
  -> e
  <- e, ee, es
  -> s, se
X1K1:
  <- s
  ...
  -> e
  <- e, ee, es
  -> s
  <- se
X1X:
  -> e
  <- e, ee, s, es
  -> s
  <- se
XX1:
  -> e
  <- e, ee, s
  -> es, s, se
X1X1:
  -> e
  <- e, ee, s
  -> es, s
  <- se
K1N:
  -> s
  ...
  -> e
  <- e, ee
  -> se
K1K:
  -> s
  <- s
  ...
  -> e, es
  <- e, ee
  -> se
KK1:
  -> s
  <- s
  ...
  -> e
  <- e, ee, se, es
K1K1:
  -> s
  <- s
  ...
  -> e
  <- e, ee, es
  -> se
K1X:
  -> s
  ...
  -> e
  <- e, ee, s, es
  -> se
KX1:
  -> s
  ...
  -> e
  <- e, ee, se, s
  -> es
K1X1:
  -> s
  ...
  -> e
  <- e, ee, s
  -> se, es
I1N:
  -> e, s
  <- e, ee
  -> se
I1K:
  <- s
  ...
  -> e, es, s
  <- e, ee
  -> se
IK1:
  <- s
  ...
  -> e, s
  <- e, ee, se, es
I1K1:
  <- s
  ...
  -> e, s
  <- e, ee, es
  -> se
I1X:
  -> e, s
  <- e, ee, s, es
  -> se
IX1:
  -> e, s
  <- e, ee, se, s
  -> es
I1X1:
  -> e, s
  <- e, ee, s
  -> se, es
`;

interface BasePattern {
  initiatorPre: Token[];
  responderPre: Token[];
  messages: Token[][];
}

const TOKENS = new Set<Token>(['e', 's', 'ee', 'es', 'se', 'ss', 'psk', 'e1', 'ekem1']);

/** Parses the spec notation above; throws on any line it does not understand (a bug here, not input). */
function parsePatternText(text: string): Map<string, BasePattern> {
  const out = new Map<string, BasePattern>();
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  let name: string | null = null;
  const raw: string[] = [];
  const parseLine = (line: string) => {
    const m = /^(->|<-)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`bad pattern line ${line}`);
    const tokens = m[2].split(',').map((t) => t.trim()).filter(Boolean) as Token[];
    for (const t of tokens) if (!TOKENS.has(t)) throw new Error(`bad token ${t}`);
    return { dir: m[1], tokens };
  };
  const finish = () => {
    if (name === null) return;
    const pattern: BasePattern = { initiatorPre: [], responderPre: [], messages: [] };
    const dots = raw.indexOf('...');
    for (const line of dots >= 0 ? raw.slice(0, dots) : []) {
      const { dir, tokens } = parseLine(line);
      (dir === '->' ? pattern.initiatorPre : pattern.responderPre).push(...tokens);
    }
    (dots >= 0 ? raw.slice(dots + 1) : raw).forEach((line, i) => {
      const { dir, tokens } = parseLine(line);
      if ((dir === '->') !== (i % 2 === 0)) throw new Error(`pattern ${name}: message ${i} direction`);
      pattern.messages.push(tokens);
    });
    out.set(name, pattern);
    raw.length = 0;
  };
  for (const line of lines) {
    const header = /^([A-Z0-9]+):$/.exec(line);
    if (header) {
      finish();
      name = header[1];
    } else {
      raw.push(line);
    }
  }
  finish();
  return out;
}

const BASE_PATTERNS = parsePatternText(PATTERN_TEXT);

/** Names of every base pattern in the table. */
export const BASE_PATTERN_NAMES: readonly string[] = [...BASE_PATTERNS.keys()];

const cache = new Map<string, HandshakePattern>();

/**
 * Resolves a pattern name with modifiers, e.g. `XX`, `XXpsk3`, `NNpsk0+psk2`, `XXhfs`,
 * `NKhfs+psk2`. Returns null when the name is not a known pattern or a modifier is invalid.
 */
export function resolvePattern(fullName: string): HandshakePattern | null {
  const cached = cache.get(fullName);
  if (cached) return cached;
  const m = /^([NKXI]1?[NKX]1?|[NKX])((?:psk\d+|hfs|fallback)(?:\+(?:psk\d+|hfs|fallback))*)?$/.exec(fullName);
  if (!m) return null;
  const base = BASE_PATTERNS.get(m[1]);
  if (!base) return null;
  const modifiers = m[2] ? m[2].split('+') : [];
  if (new Set(modifiers).size !== modifiers.length) return null;
  const messages = base.messages.map((msg) => [...msg]);
  const oneWay = m[1].length === 1;
  let hfs = false;
  let psk = false;
  for (const mod of modifiers) {
    if (mod === 'fallback') return null; // §10.2 fallback is not supported here.
    if (mod === 'hfs') {
      // HFS §5: one-way patterns cannot carry hfs; hfs precedes psk modifiers in names.
      if (oneWay || hfs || psk) return null;
      if (!applyHfs(messages)) return null;
      hfs = true;
      continue;
    }
    const n = Number(mod.slice(3));
    // §9.2: psk0 goes first in the first message; pskN (N ≥ 1) goes last in message N.
    if (n > messages.length) return null;
    if (n === 0) messages[0].unshift('psk');
    else messages[n - 1].push('psk');
    psk = true;
  }
  const pattern: HandshakePattern = Object.freeze({
    name: fullName,
    base: m[1],
    initiatorPre: base.initiatorPre,
    responderPre: base.responderPre,
    messages,
    oneWay,
    psk,
    hfs,
  });
  cache.set(fullName, pattern);
  return pattern;
}

/**
 * Noise HFS §5: an `e1` token follows the first `e` — unless that message also has a DH
 * token, then it follows the first DH so the KEM public key travels encrypted — and an
 * `ekem1` token directly follows the first `ee`.
 */
function applyHfs(messages: Token[][]): boolean {
  let placedE1 = false;
  for (const msg of messages) {
    const e = msg.indexOf('e');
    if (e < 0) continue;
    const dh = msg.findIndex((t) => t === 'ee' || t === 'es' || t === 'se' || t === 'ss');
    msg.splice(dh >= 0 ? dh + 1 : e + 1, 0, 'e1');
    placedE1 = true;
    break;
  }
  if (!placedE1) return false;
  for (const msg of messages) {
    const ee = msg.indexOf('ee');
    if (ee < 0) continue;
    msg.splice(ee + 1, 0, 'ekem1');
    return true;
  }
  return false;
}

/** Renders a pattern in the spec notation (used by PROTOCOL.md and error messages). */
export function formatPattern(pattern: HandshakePattern): string {
  const lines: string[] = [];
  if (pattern.initiatorPre.length) lines.push(`-> ${pattern.initiatorPre.join(', ')}`);
  if (pattern.responderPre.length) lines.push(`<- ${pattern.responderPre.join(', ')}`);
  if (lines.length) lines.push('...');
  for (const [i, msg] of pattern.messages.entries()) lines.push(`${i % 2 === 0 ? '->' : '<-'} ${msg.join(', ')}`);
  return lines.join('\n');
}
