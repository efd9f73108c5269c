export * from './child-process.js';
export * from './msw-undici.js';
export * from './nats-server.js';
export * from './ports.js';
export * from './postgres-cluster.js';
export * from './registry.js';
export * from './tcp-proxy.js';
