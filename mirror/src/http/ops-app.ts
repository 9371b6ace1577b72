import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AppLoggerOptions } from './app.js';

/** Collaborators of {@link buildOpsApp}. */
export interface OpsAppDeps {
  /** The prom-client registry every daemon metric is registered on. */
  readonly registry: Registry;
  /** True when the daemon can serve (joined the member set, store reachable). */
  readonly ready: () => boolean | Promise<boolean>;
  /** Structured JSON logs; `false` (the default) disables logging. */
  readonly logger?: AppLoggerOptions | false;
  /** The node check's latest report, shown by `/readyz?verbose` (mirror/src/node-check). */
  readonly nodeReport?: () => unknown;
}

/** Builds the operations endpoint: `/metrics` (Prometheus text format), `/readyz` (200/503), `/livez` (200). */
export function buildOpsApp(deps: OpsAppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger
      ? { level: deps.logger.level, ...(deps.logger.stream ? { stream: deps.logger.stream } : {}) }
      : false,
    return503OnClosing: false,
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.registry.metrics();
    return reply.type(deps.registry.contentType).send(text);
  });

  app.get('/readyz', async (request, reply) => {
    let ready: boolean;
    try {
      ready = await deps.ready();
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      ready = false;
    }
    reply.code(ready ? 200 : 503);
    // `?verbose`: the same status, with what the daemon knows about its node (read by the stack's
    // health output through the apiserver's pod proxy).
    if ((request.query as Record<string, unknown>).verbose !== undefined)
      return reply.send({ ready, node: deps.nodeReport?.() ?? null });
    return reply.type('text/plain; charset=utf-8').send(ready ? 'ok\n' : 'not ready\n');
  });

  app.get('/livez', async (_request, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));

  return app;
}
