/**
 * TLS helpers: a self-signed development certificate (`ssc tls dev-cert`), made with the
 * system's `openssl` (ECDSA P-256, SAN for the given hosts, 30 days).
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface DevCertOptions {
  outDir: string;
  hosts: string[];
  days?: number;
  /** File name stem: `<name>.pem` and `<name>-key.pem`. */
  name?: string;
  /** Issue a client certificate (extendedKeyUsage clientAuth) signed by this CA instead of self-signing. */
  ca?: { cert: string; key: string };
  /** Subject common name (default: first host). */
  commonName?: string;
}

/** Writes a certificate and key; returns their paths. Requires `openssl` on PATH. */
export async function generateDevCertificate(options: DevCertOptions): Promise<{ cert: string; key: string }> {
  const { outDir, hosts, days = 30, name = 'dev-cert' } = options;
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const cert = join(outDir, `${name}.pem`);
  const key = join(outDir, `${name}-key.pem`);
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  const cn = options.commonName ?? hosts[0] ?? 'localhost';
  const run = async (args: string[]) => {
    const proc = Bun.spawn(['openssl', ...args], { stdout: 'pipe', stderr: 'pipe' });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    if (code !== 0) throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`);
  };
  if (!options.ca) {
    await run([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${cn}`,
      '-addext', `subjectAltName=${san}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    ]);
  } else {
    const csr = join(outDir, `${name}.csr`);
    const ext = join(outDir, `${name}.ext`);
    await Bun.write(ext, `subjectAltName=${san}\nextendedKeyUsage=clientAuth,serverAuth\nbasicConstraints=CA:FALSE\n`);
    await run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    await run([
      'x509', '-req', '-in', csr, '-CA', options.ca.cert, '-CAkey', options.ca.key, '-CAcreateserial',
      '-out', cert, '-days', String(days), '-extfile', ext,
    ]);
  }
  chmodSync(key, 0o600);
  return { cert, key };
}

/**
 * The subject common name of a peer certificate as Bun exposes it on a TLS socket
 * (`server.requestIP` gives no certificate; the transport passes `getPeerCertificate()`).
 */
export function commonNameOf(peer: { subject?: { CN?: string | string[] } } | undefined | null): string | null {
  const cn = peer?.subject?.CN;
  if (Array.isArray(cn)) return cn[0] ?? null;
  return cn ?? null;
}
