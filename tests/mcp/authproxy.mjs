// The MCP conformance suite's client cannot send a header, and the
// dashboard's /mcp needs its bearer token: this loopback-only proxy adds
// it. Every request goes on as it came (method, path, body, Host and
// Origin — those are rewritten only when they name the proxy itself, so a
// rebinding probe still reaches the dashboard's guard as sent); responses
// stream back (SSE).
//   node authproxy.mjs TARGET_URL TOKEN   → prints {"url": "http://127.0.0.1:PORT"}
import http from 'node:http';

const [, , target, token] = process.argv;
const upstream = new URL(target);

const server = http.createServer((req, res) => {
  const port = server.address().port;
  const own = [`127.0.0.1:${port}`, `localhost:${port}`];
  const headers = { ...req.headers };
  headers.authorization ??= `Bearer ${token}`;
  if (own.includes(headers.host)) headers.host = upstream.host;
  if (own.some((h) => headers.origin === `http://${h}`)) headers.origin = upstream.origin;
  const forward = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
    (answer) => {
      res.writeHead(answer.statusCode, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  forward.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502);
    res.end(String(e));
  });
  req.pipe(forward);
  res.on('close', () => forward.destroy());
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});
