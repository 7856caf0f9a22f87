/**
 * A mutual-TLS front for APIs that identify callers by their client certificate (ETSI GS QKD
 * 014: the KME derives the SAE ID from it). Bun.serve enforces client certificates but does
 * not hand the certificate to the request handler, so this front terminates TLS with
 * `node:tls` (which exposes `getPeerCertificate()`), verifies the chain against the configured
 * CA, and pipes each connection to an internal loopback HTTP server. The internal server looks
 * the caller up by the front's outgoing port: `identityOf(remotePort)` gives the certificate's
 * subject CN for exactly the lifetime of that connection.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export interface MtlsFrontOptions {
  host: string;
  port: number;
  cert: string;
  key: string;
  /** CA bundle that signs client certificates. */
  ca: string;
  /** The internal server to forward to (loopback). */
  target: { host: string; port: number };
  onError?(error: unknown): void;
}

export interface MtlsFront {
  port: number;
  /** Subject CN of the client certificate behind an internal connection from this port. */
  identityOf(remotePort: number | undefined): string | null;
  close(): Promise<void>;
}

/** Starts the front; resolves once it listens. */
export async function startMtlsFront(options: MtlsFrontOptions): Promise<MtlsFront> {
  const identities = new Map<number, string>();
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    {
      cert: readFileSync(options.cert),
      key: readFileSync(options.key),
      ca: readFileSync(options.ca),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (socket) => {
      const peer = socket.getPeerCertificate();
      const cn = Array.isArray(peer?.subject?.CN) ? peer.subject.CN[0] : peer?.subject?.CN;
      if (!socket.authorized || !cn) {
        socket.destroy();
        return;
      }
      const upstream = net.connect(options.target.port, options.target.host);
      sockets.add(socket);
      sockets.add(upstream);
      let localPort: number | undefined;
      upstream.on('connect', () => {
        localPort = upstream.localPort;
        if (localPort) identities.set(localPort, cn);
        socket.pipe(upstream);
        upstream.pipe(socket);
      });
      const done = () => {
        if (localPort) identities.delete(localPort);
        sockets.delete(socket);
        sockets.delete(upstream);
        socket.destroy();
        upstream.destroy();
      };
      socket.on('close', done);
      upstream.on('close', done);
      socket.on('error', (e) => {
        options.onError?.(e);
        done();
      });
      upstream.on('error', (e) => {
        options.onError?.(e);
        done();
      });
    },
  );
  server.on('tlsClientError', (error) => options.onError?.(error));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    identityOf: (remotePort) => (remotePort ? (identities.get(remotePort) ?? null) : null),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
