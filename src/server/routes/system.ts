/** /healthz, /metrics and /openapi.json: unauthenticated, read-only. */
import type { FastifyInstance } from "fastify";
import { KmsError } from "../../kms/errors.js";
import type { ServicePort } from "../../service/service.js";
import { beforeDeadline } from "../deadline.js";
import type { ServerMetrics } from "../metrics.js";
import { ERROR_SCHEMA, object, string } from "../route.js";

export const HEALTH_PATH = "/healthz";

/** `closing`: whether the server is shutting down (the service is still open while requests drain). */
export function registerSystemRoutes(app: FastifyInstance, service: ServicePort, metrics: ServerMetrics | undefined, closing: () => boolean, timeoutMs: number): void {
  app.get(HEALTH_PATH, {
    schema: {
      summary: "Liveness and readiness: 200 once the token and the store are open; 503 while starting or shutting down, and when the service can serve nothing until restarted (the token refused the configured PIN)",
      tags: ["System"],
      response: { 200: object({ status: string(), token: object({ label: string(), module: string() }) }), 503: object({ status: string(), problem: string() }), "4xx": ERROR_SCHEMA },
    },
  }, async (_request, reply) => {
    if (closing()) return reply.code(503).send({ status: "unavailable", problem: "closing" });
    let health;
    try {
      // A KMS thread that no longer answers is unhealthy, not a probe left waiting.
      health = await beforeDeadline(reply, timeoutMs, service.health());
    } catch (error) {
      return reply.code(503).send({ status: "unavailable", problem: (error instanceof KmsError ? error.detail : undefined) ?? (error as Error).message });
    }
    if (!health.ok) return reply.code(503).send({ status: "unavailable", problem: health.problem ?? "unknown" });
    return { status: "ok", token: health.token };
  });
  app.get("/metrics", { schema: { summary: "Prometheus metrics", tags: ["System"] } }, async (_request, reply) => {
    if (metrics === undefined) return reply.code(404).send();
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  app.get("/openapi.json", { schema: { summary: "This API as OpenAPI 3", tags: ["System"] } }, async () => (app as unknown as { swagger(): unknown }).swagger());
}
