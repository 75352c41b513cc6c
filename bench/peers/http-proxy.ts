// Peer: node-http-proxy (npm "http-proxy") in front of one target, as its README sets it up, with
// a keep-alive agent to the target and X-Forwarded-* on (xfwd), like Portico's defaults.
// Usage: node http-proxy.js PORT TARGET_URL
import http from 'node:http';
import httpProxy from 'http-proxy';

const [portArg, target] = process.argv.slice(2);
if (!portArg || !target) throw new Error('usage: http-proxy.js PORT TARGET_URL');

const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true });
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502);
  res.end();
});
http.createServer((req, res) => proxy.web(req, res)).listen(Number(portArg), '127.0.0.1');
