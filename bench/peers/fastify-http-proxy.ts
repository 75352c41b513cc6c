// Peer: fastify with @fastify/http-proxy (undici pool to the target, keep-alive), logger off.
// Usage: node fastify-http-proxy.js PORT TARGET_URL
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [portArg, target] = process.argv.slice(2);
if (!portArg || !target) throw new Error('usage: fastify-http-proxy.js PORT TARGET_URL');

const app = Fastify({ logger: false });
await app.register(proxy, {
  upstream: target,
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 },
});
await app.listen({ port: Number(portArg), host: '127.0.0.1' });
