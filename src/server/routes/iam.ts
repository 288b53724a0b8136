/**
 * POST /v3/auth/tokens: an IAM-style token for X-Auth-Token, scoped to one project, expiring after
 * auth.tokenTtlSeconds. The identity is either the password method of IAM's body with the AK as the
 * user name and the SK as the password (so that curl can get a token from credentials.json), or
 * the request itself signed with SDK-HMAC-SHA256. The token comes back in X-Subject-Token, as IAM's.
 */
import type { FastifyInstance } from "fastify";
import type { HsmkitConfig } from "../../config/config.js";
import { KmsError } from "../../kms/errors.js";
import type { ServicePort } from "../../service/service.js";
import { beforeDeadline } from "../deadline.js";
import { signatureEvidenceOf } from "../evidence.js";
import { ERROR_SCHEMA, object, string } from "../route.js";

const ID = string({ min: 1, max: 64 });

const BODY = object({
  auth: object({
    identity: object({
      methods: { type: "array", items: string({ enum: ["password", "hw_ak_sk"] }), minItems: 1, maxItems: 2 },
      password: object({
        user: object({
          name: string({ min: 1, max: 128, description: "The AK" }),
          password: string({ min: 1, max: 128, description: "The SK" }),
          domain: object({ id: ID, name: ID }),
        }, ["name", "password"]),
      }, ["user"]),
    }, ["methods"]),
    scope: object({ project: object({ id: ID, name: ID }, ["id"]) }, ["project"]),
  }, ["identity", "scope"]),
}, ["auth"]);

const RESPONSE = object({
  token: object({
    expires_at: string(),
    issued_at: string(),
    methods: { type: "array", items: string() },
    project: object({ id: string(), domain: object({ id: string() }) }),
    user: object({ id: string(), domain: object({ id: string() }) }),
  }),
});

interface TokenBody {
  auth: {
    identity: { methods: string[]; password?: { user: { name: string; password: string } } };
    scope: { project: { id: string } };
  };
}

export function registerIamRoutes(app: FastifyInstance, service: ServicePort, config: Readonly<HsmkitConfig>, now: () => number): void {
  app.post("/v3/auth/tokens", {
    schema: {
      operationId: "KeystoneCreateUserTokenByPassword",
      summary: "Get an X-Auth-Token scoped to a project (user name = AK, password = SK; or sign the request with AK/SK)",
      tags: ["IAM"],
      body: BODY,
      response: { 201: RESPONSE, "4xx": ERROR_SCHEMA, "5xx": ERROR_SCHEMA },
    },
  }, async (request, reply) => {
    const body = request.body as TokenBody;
    const methods = body.auth.identity.methods;
    const password = body.auth.identity.password;
    let auth;
    // Only a signature: an X-Auth-Token beside it is no identity here, or a token would buy its own
    // successor and live for ever (IAM's identity methods here are password and hw_ak_sk).
    if (request.headers.authorization !== undefined) auth = signatureEvidenceOf(request, now(), config.auth.clockSkewSeconds);
    else if (!methods.includes("password") || password === undefined) throw new KmsError("APIGW.0301", "no password and no signature");
    const issued = await beforeDeadline(reply, config.server.requestTimeoutMs, service.issueToken({
      auth,
      password: auth === undefined && password ? { accessKey: password.user.name, secretKey: password.user.password } : undefined,
      projectId: body.auth.scope.project.id,
      requestId: request.id,
      source: request.ip,
    }));
    reply.header("X-Subject-Token", issued.token);
    return reply.code(201).send({
      token: {
        expires_at: new Date(issued.expiresAt).toISOString(),
        issued_at: new Date(issued.issuedAt).toISOString(),
        methods: auth === undefined ? ["password"] : ["hw_ak_sk"],
        project: { id: issued.projectId, domain: { id: issued.domainId } },
        user: { id: issued.principalId, domain: { id: issued.domainId } },
      },
    });
  });
}
