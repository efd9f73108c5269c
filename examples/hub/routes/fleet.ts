/**
 * The fleet routes under `/api/v1/config` (docs/fleet.md §3–§5): the report request, the fleet view and
 * the dry run of a write. The schema upload lives in schemas.ts (`/api/v1/schemas`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { requireObject } from '../body.js';
import { HubError } from '../errors.js';
import { rejecting, refusal } from '../fleet/consumer-check.js';
import { checkReport } from '../fleet/report.js';
import { summarize } from '../fleet/rules.js';
import { rejectSecrets, rejectStoredSecrets, requireJson } from './config.js';
import { principalOf, type RouteContext, serviceParam } from './context.js';
import { instanceReportSchema } from '../../../src/fleet/wire.js';
import { apiOperation, json } from '../openapi/operation.js';
import { configObject, fleetView, reportAccepted, serviceParams, validateAnswer, writeRefusal } from '../openapi/shapes.js';

/** A report request's body bound: the report of 100 services, pretty-printed, fits. */
export const MAX_REPORT_BODY_BYTES = 64 * 1024;

const docs = {
  report: apiOperation({
    operationId: 'reportInstance',
    summary: 'Report an instance (on a change it applied, or rejected)',
    description: 'The body is the report of the `x-config-report` header (docs/fleet.md §3); `{service}` must be among its services, and the key must read every one.',
    tags: ['fleet'],
    params: serviceParams,
    body: { schema: instanceReportSchema, description: `the instance report, at most ${MAX_REPORT_BODY_BYTES} bytes` },
    responses: { 202: json(reportAccepted, 'recorded') },
    errors: [400, 403, 413, 415],
  }),
  view: apiOperation({
    operationId: 'getInstances',
    summary: "The fleet view: a service's live instances and what they run",
    tags: ['fleet'],
    params: serviceParams,
    responses: { 200: json(fleetView, 'the live instances, sorted by id, and their counts') },
    errors: [400, 403],
  }),
  validate: apiOperation({
    operationId: 'validateConfig',
    summary: "A write's checks without the write (a dry run of a POST)",
    tags: ['fleet'],
    params: serviceParams,
    body: { schema: configObject, description: 'a candidate config, as a POST would send it' },
    responses: {
      200: json(validateAnswer, 'every live consumer accepts it (`consumers`: every one checked, `issues: []`)'),
      422: json(writeRefusal, 'secret-looking keys or values (`paths`), or consumers that would reject it'),
    },
    errors: [400, 403, 413, 415],
  }),
};

export const fleetRoutes: FastifyPluginAsync<{ ctx: RouteContext }> = async (app, { ctx }) => {
  // The report request: 202 { accepted } with the number of services recorded.
  app.post('/:service/instances', { bodyLimit: MAX_REPORT_BODY_BYTES, schema: docs.report }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'read');
    requireJson(request, false);
    const parsed = checkReport(request.body);
    if (!parsed.ok) throw new HubError(400, parsed.reason);
    if (!Object.hasOwn(parsed.report.services, service)) {
      throw new HubError(400, `the report does not list '${service}' among its services`);
    }
    const denied = parsed.entries.find((e) => !principal.can('read', e.service_name));
    if (denied !== undefined) throw new HubError(403, `API key '${principal.name}' may not read '${denied.service_name}'`);
    const now = Date.now();
    let accepted = 0;
    // A new instance id beyond the registry's caps is not recorded (instance-registry.ts).
    for (const fields of parsed.entries) if (ctx.fleet.instances.record(fields, now)) accepted++;
    reply.code(202);
    return { accepted };
  });

  // The fleet view: the live instances (every replica's, through the table, and this one's unflushed).
  app.get('/:service/instances', { schema: docs.view }, async (request) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'read');
    const [row, view] = await Promise.all([ctx.reads.get(service), ctx.fleet.instances.view(service)]);
    const revision = row?.active ? row.revision : null;
    return {
      service_name: service,
      revision,
      instances: view.instances.map((i) => ({
        instance_id: i.instance_id,
        host: i.host,
        pid: i.pid,
        client_version: i.client_version,
        revision: i.revision,
        source: i.source,
        stale: i.stale,
        last_seen: i.last_seen,
        expires_at: i.expires_at,
        last_error: i.last_error,
        schema_hash: i.schema_hash,
      })),
      // Every live instance (as the list route counts them), not only the ones listed.
      summary: summarize(view.groups, revision),
      truncated: view.truncated,
    };
  });

  // A write's checks without the write: the secret checks of a POST, then the consumers'.
  app.post('/:service/validate', { schema: docs.validate }, async (request) => {
    const principal = principalOf(ctx, request);
    const service = serviceParam(request, principal, 'write');
    requireJson(request, false);
    const config = requireObject(request.body, 'config');
    rejectSecrets(ctx, config);
    rejectStoredSecrets(ctx, config);
    const verdict = (await ctx.fleet.prepareCheck(service)).run(config);
    if (rejecting(verdict).length > 0) throw refusal(verdict);
    return { valid: true, consumers: verdict.consumers, unchecked: verdict.unchecked, unknown_schemas: verdict.unknown_schemas };
  });
};
