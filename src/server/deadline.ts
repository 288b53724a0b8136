/** How long the server waits for the service on a request's behalf. */
import type { FastifyReply } from "fastify";
import { KmsError } from "../kms/errors.js";

/**
 * `work`, or KMS.0104 (503) once the request has run for server.requestTimeoutMs. Node's
 * requestTimeout only bounds receiving a request: a KMS call that never returned (a token that
 * stopped answering) held its client, and a slot of its load balancer, for ever. The call itself
 * goes on and the service audits what it did; the client, told 503, must take the outcome as
 * unknown, as after any timeout. The connection is closed after the answer, as Node closes one
 * whose request it timed out.
 */
export function beforeDeadline<T>(reply: FastifyReply, timeoutMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reply.header("Connection", "close");
      reject(new KmsError("KMS.0104", `no answer within server.requestTimeoutMs (${timeoutMs} ms)`));
    }, Math.max(0, timeoutMs - reply.elapsedTime));
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
