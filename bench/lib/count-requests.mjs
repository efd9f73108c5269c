// Preloaded into the hub (NODE_OPTIONS=--import …) by figure 5: counts HTTP requests per 100 ms bucket through
// node:diagnostics_channel and prints `bench-requests <bucketStartEpochMs> <GETs> <others>` lines to stderr
// `<conditional GETs>` (If-None-Match: polls and refreshes of a client that holds a value) at the end of the line
// (one write per non-empty bucket), so the hub keeps its warn-level logging and its normal speed.
import { subscribe } from 'node:diagnostics_channel';

const BUCKET_MS = 100;
let bucket = 0;
let gets = 0;
let others = 0;
let conditional = 0;
function flush() {
  if (gets + others + conditional > 0) process.stderr.write(`bench-requests ${bucket} ${gets} ${others} ${conditional}\n`);
  gets = 0;
  others = 0;
  conditional = 0;
}
subscribe('http.server.request.start', ({ request }) => {
  const now = Date.now();
  const b = now - (now % BUCKET_MS);
  if (b !== bucket) {
    flush();
    bucket = b;
  }
  if (request.method === 'GET' && request.url.startsWith('/api/v1/config/')) {
    gets++;
    if (request.headers['if-none-match'] !== undefined) conditional++;
  }
  else others++;
});
setInterval(() => {
  const now = Date.now();
  if (now - bucket >= BUCKET_MS) flush();
}, BUCKET_MS).unref();
process.on('exit', flush);
