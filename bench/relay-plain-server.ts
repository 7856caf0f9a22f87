/**
 * The baseline of `bench/relay.ts`: a plain Bun WebSocket relay of the same shape as the secure
 * one, without any encryption, handshake, store or validation beyond `JSON.parse`. It speaks the
 * relay's JSON (UTF-8 in binary messages): `subscribe` (joins the Bun topic), `publish` (answers
 * with a reply and fans the publication event out with one `server.publish`, uWebSockets'
 * own topic fan-out — the cheapest fan-out Bun has). A message may be a batch (a JSON array of
 * commands, as the secure relay accepts): its replies go back as one message and each topic's
 * publications as one `server.publish`, so the batched baseline frames exactly as the secure one. Started as its own process:
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
      let parsed: Command | Command[];
      try {
        parsed = JSON.parse(text);
      } catch {
        ws.close(4002, 'bad json');
        return;
      }
      if (!Array.isArray(parsed)) {
        const out = run(ws, parsed);
        ws.send(encoder.encode(out.reply));
        if (out.publication) server.publish(out.publication.topic, encoder.encode(out.publication.json));
        return;
      }
      // A batch: the replies in one message, each topic's publications in one message.
      const replies: string[] = [];
      const byTopic = new Map<string, string[]>();
      for (const command of parsed) {
        const out = run(ws, command);
        replies.push(out.reply);
        if (!out.publication) continue;
        const list = byTopic.get(out.publication.topic);
        if (list) list.push(out.publication.json);
        else byTopic.set(out.publication.topic, [out.publication.json]);
      }
      ws.send(encoder.encode(replies.length === 1 ? replies[0]! : `[${replies.join(',')}]`));
      for (const [topic, list] of byTopic) server.publish(topic, encoder.encode(list.length === 1 ? list[0]! : `[${list.join(',')}]`));
    },
  },
});

interface Command {
  id: number;
  cmd: string;
  topic: string;
  data?: string;
}

function run(ws: Bun.ServerWebSocket<Data>, cmd: Command): { reply: string; publication?: { topic: string; json: string } } {
  if (cmd.cmd === 'subscribe') {
    ws.subscribe(cmd.topic);
    const offset = offsets.get(cmd.topic) ?? 0;
    return { reply: JSON.stringify({ type: 'reply', id: cmd.id, ok: true, result: { topic: cmd.topic, epoch, offset } }) };
  }
  if (cmd.cmd === 'publish') {
    const offset = (offsets.get(cmd.topic) ?? 0) + 1;
    offsets.set(cmd.topic, offset);
    const time = Date.now();
    const reply = JSON.stringify({ type: 'reply', id: cmd.id, ok: true, result: { topic: cmd.topic, offset, epoch } });
    const event = { type: 'publication', topic: cmd.topic, offset, epoch, from: ws.data.id, data: cmd.data, time };
    return { reply, publication: { topic: cmd.topic, json: JSON.stringify(event) } };
  }
  return { reply: JSON.stringify({ type: 'reply', id: cmd.id, ok: false, error: { code: 'unknown_command', message: cmd.cmd } }) };
}

console.log(JSON.stringify({ msg: 'listening', port: server.port, pid: process.pid }));
