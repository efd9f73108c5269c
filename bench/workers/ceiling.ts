/**
 * The ceiling of figure 4: a bare Fastify route that returns the same ~1 KB JSON document as the hub,
 * from memory, with the same ETag / If-None-Match behaviour. Its own process, like the hub.
 */
import Fastify from 'fastify';

const body = process.env.BENCH_BODY!;
const etag = process.env.BENCH_ETAG!;
const app = Fastify({ logger: false });
app.get('/api/v1/config/:service', (request, reply) => {
  reply.header('etag', etag);
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  reply.header('content-type', 'application/json; charset=utf-8');
  return reply.send(body);
});
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.send?.({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
process.on('disconnect', () => process.exit(0));
