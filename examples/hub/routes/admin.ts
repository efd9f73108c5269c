import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/** The admin page's files: `examples/hub/admin/`, flat, read once at registration. */
export const ADMIN_DIR = fileURLToPath(new URL('../admin/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Everything from this origin only, nothing inline (no script, no style attribute), no plugins, no framing;
 * the page talks to the hub's API on the same origin.
 */
export const ADMIN_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface AdminFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Regular files with a known type, by exact name: nothing else is ever served (no path is ever joined from the URL). */
function loadFiles(dir: string): Map<string, AdminFile> {
  const files = new Map<string, AdminFile>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    const path = join(dir, name);
    if (type === undefined || name.startsWith('.') || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
  }
  if (!files.has('index.html')) throw new Error(`admin page: no index.html in ${dir}`);
  return files;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', ADMIN_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

const OTHER_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * The admin page at `/admin` (README "Admin page"): static files from memory, GET/HEAD only. The files need
 * no key (they hold none); the page sends the key the user enters with every API call it makes.
 * `Cache-Control: no-cache` + a strong ETag: browsers revalidate, an unchanged file costs a 304.
 */
export const adminRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, options) => {
  const files = loadFiles(options.dir ?? ADMIN_DIR);

  const send = (request: FastifyRequest, reply: FastifyReply, name: string) => {
    const file = files.get(name);
    securityHeaders(reply);
    if (file === undefined) return reply.code(404).send({ detail: 'no such admin file' });
    reply.header('cache-control', 'no-cache').header('etag', file.etag);
    const inm = request.headers['if-none-match'];
    if (inm?.split(',').some((t) => t.trim() === file.etag || t.trim() === '*')) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  };

  // Static files, not API: left out of the OpenAPI document (README "OpenAPI").
  const schema = { hide: true };
  // GET routes answer HEAD too (Fastify's exposeHeadRoutes).
  app.get('/admin', { schema }, (request, reply) => send(request, reply, 'index.html'));
  app.get('/admin/', { schema }, (request, reply) => send(request, reply, 'index.html'));
  // One segment, matched by exact name against the files loaded above: `..`, `%2F`, nested paths are 404.
  app.get('/admin/*', { schema }, (request, reply) => send(request, reply, (request.params as { '*': string })['*']));

  // Any other method: 405 before a body is read.
  for (const url of ['/admin', '/admin/', '/admin/*']) {
    app.route({
      method: [...OTHER_METHODS],
      url,
      schema,
      onRequest: async (_request, reply) => {
        securityHeaders(reply).code(405).header('allow', 'GET, HEAD').send({ detail: 'the admin page is read-only: use GET or HEAD' });
        return reply;
      },
      handler: async () => undefined,
    });
  }
};
