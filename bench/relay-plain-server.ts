/**
 * The baseline of `bench/relay.ts`: a plain Bun WebSocket relay of the same shape as the secure
 * one, without any encryption, handshake, store or validation beyond `JSON.parse`. It speaks the
 * relay's JSON (UTF-8 in binary messages): `subscribe` (joins the Bun topic), `publish` (answers
 * with a reply and fans the publication event out with one `server.publish`, uWebSockets'
 * own topic fan-out — the cheapest fan-out Bun has). Started as its own process:
 * `bun bench/relay-plain-server.ts`, prints `{"msg":"listening","port":…}`.
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const epoch = 'plainbaseline';
const offsets = new Map<string, number>();
let nextClient = 0;

interface Data {
  id: string;
}

const server = Bun.serve<Data>({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  fetch(request, srv) {
    const id = (nextClient++).toString(16).padStart(64, '0');
    if (srv.upgrade(request, { data: { id } })) return undefined;
    return new Response('plain relay: WebSocket only', { status: 400 });
  },
  websocket: {
    idleTimeout: 120,
    maxPayloadLength: 65_536,
    message(ws, message) {
      const text = typeof message === 'string' ? message : decoder.decode(message);
      let cmd: { id: number; cmd: string; topic: string; data?: string };
      try {
        cmd = JSON.parse(text);
      } catch {
        ws.close(4002, 'bad json');
        return;
      }
      if (cmd.cmd === 'subscribe') {
        ws.subscribe(cmd.topic);
        const offset = offsets.get(cmd.topic) ?? 0;
        ws.send(encoder.encode(JSON.stringify({ type: 'reply', id: cmd.id, ok: true, result: { topic: cmd.topic, epoch, offset } })));
        return;
      }
      if (cmd.cmd === 'publish') {
        const offset = (offsets.get(cmd.topic) ?? 0) + 1;
        offsets.set(cmd.topic, offset);
        const time = Date.now();
        ws.send(encoder.encode(JSON.stringify({ type: 'reply', id: cmd.id, ok: true, result: { topic: cmd.topic, offset, epoch } })));
        const event = { type: 'publication', topic: cmd.topic, offset, epoch, from: ws.data.id, data: cmd.data, time };
        server.publish(cmd.topic, encoder.encode(JSON.stringify(event)));
        return;
      }
      ws.send(encoder.encode(JSON.stringify({ type: 'reply', id: cmd.id, ok: false, error: { code: 'unknown_command', message: cmd.cmd } })));
    },
  },
});

console.log(JSON.stringify({ msg: 'listening', port: server.port, pid: process.pid }));
