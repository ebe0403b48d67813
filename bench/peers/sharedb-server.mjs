// sharedb-server.mjs: ShareDB 7 with its in-memory database and pub/sub,
// behind a WebSocket server (ws), as ShareDB's own examples run it. It
// prints "listening PORT" once it accepts connections. One Node thread;
// nothing is written to disk.
//
//	node sharedb-server.mjs [port]     (0: any free port)
import http from "node:http";
import { Duplex } from "node:stream";
import ShareDB from "sharedb";
import { WebSocketServer } from "ws";

const backend = new ShareDB();
const server = http.createServer();
const wss = new WebSocketServer({ server });

// jsonStream turns a WebSocket into the object stream backend.listen
// takes (what @teamwork/websocket-json-stream does, without a dependency).
function jsonStream(ws) {
  const s = new Duplex({
    objectMode: true,
    read() {},
    write(msg, _enc, cb) {
      if (ws.readyState === 1) ws.send(JSON.stringify(msg));
      cb();
    },
  });
  ws.on("message", (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { ws.close(1003); return; }
    s.push(msg);
  });
  ws.on("close", () => { s.push(null); s.destroy(); });
  s.on("error", () => ws.terminate());
  return s;
}

wss.on("connection", (ws) => backend.listen(jsonStream(ws)));
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
