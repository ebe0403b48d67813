// watch.mjs watches a collabd SSE feed with the eventsource npm package, a
// client collabd's authors did not write, as a browser page would.
//
//   node watch.mjs <events URL>
//
// It prints one JSON object per line on stdout: {"type":"open"} on every
// (re)connect, {"type":"error",...} when the connection drops, and for
// every event {"type":"snapshot"|"op","id","rev","text"}, where text is
// the document after the event. Ops are applied counting Unicode code
// points, as the protocol does. When stdin ends it prints
// {"type":"final","rev","text"} and exits; any inconsistency prints
// {"type":"fail","message"} and exits with status 1.
//
// Reconnecting, and sending Last-Event-ID when it does, is left entirely
// to the EventSource.

import { EventSource } from 'eventsource';

const url = process.argv[2];
if (!url) {
  console.error('usage: node watch.mjs <events URL>');
  process.exit(2);
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const fail = (message) => {
  print({ type: 'fail', message });
  process.exit(1);
};

let text = null;
let rev = -1;

// apply applies an op (retain n > 0, insert string, delete n < 0) to a
// text, counting code points: Array.from splits by code point, not by
// UTF-16 unit.
function apply(text, op) {
  const chars = Array.from(text);
  const out = [];
  let pos = 0;
  for (const c of op) {
    if (typeof c === 'string') {
      out.push(c);
    } else if (c > 0) {
      if (pos + c > chars.length) throw new Error(`retain ${c} at ${pos} passes the end (${chars.length})`);
      out.push(chars.slice(pos, pos + c).join(''));
      pos += c;
    } else if (c < 0) {
      if (pos - c > chars.length) throw new Error(`delete ${-c} at ${pos} passes the end (${chars.length})`);
      pos -= c;
    } else {
      throw new Error(`bad component ${JSON.stringify(c)}`);
    }
  }
  if (pos !== chars.length) throw new Error(`op covers ${pos} code points, text has ${chars.length}`);
  return out.join('');
}

const es = new EventSource(url);

es.addEventListener('open', () => print({ type: 'open' }));

es.addEventListener('error', (e) => {
  print({ type: 'error', message: e.message ?? '', code: e.code ?? null, readyState: es.readyState });
  if (es.readyState === EventSource.CLOSED) fail(`the EventSource gave up: ${e.message}`);
});

es.addEventListener('snapshot', (e) => {
  const d = JSON.parse(e.data);
  if (e.lastEventId !== String(d.rev)) fail(`snapshot id ${e.lastEventId} differs from its rev ${d.rev}`);
  text = d.text;
  rev = d.rev;
  print({ type: 'snapshot', id: e.lastEventId, rev, text });
});

es.addEventListener('op', (e) => {
  const d = JSON.parse(e.data);
  if (e.lastEventId !== String(d.rev)) fail(`op id ${e.lastEventId} differs from its rev ${d.rev}`);
  if (text === null) fail(`op ${d.rev} before any snapshot`);
  if (d.rev !== rev + 1) fail(`op ${d.rev} after rev ${rev}: a gap or a repeat`);
  try {
    text = apply(text, d.op);
  } catch (err) {
    fail(`op ${d.rev}: ${err.message}`);
  }
  rev = d.rev;
  print({ type: 'op', id: e.lastEventId, rev, text });
});

// Events without a type ("message") are not part of the protocol.
es.addEventListener('message', (e) => fail(`unexpected message event: ${e.data}`));

process.stdin.on('end', () => {
  es.close();
  print({ type: 'final', rev, text });
  process.exit(0);
});
process.stdin.resume();
