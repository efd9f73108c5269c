/**
 * Two internal files of undici that `own-agent.ts` loads instead of undici's entry point (they ship no types).
 * Typed `unknown`: their shape is checked at run time, and anything else falls back to `import('undici')`.
 */
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: unknown;
  export default Agent;
}

declare module 'undici/lib/api/api-request.js' {
  const request: unknown;
  export default request;
}
