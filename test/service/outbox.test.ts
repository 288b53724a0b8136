// The KMS thread's outbox: messages of one turn go as one array; byte arrays that view a larger
// buffer (Node's pool) cross as exact copies, transferred — never the pool block around them, which
// holds other requests' bytes; a message that cannot be cloned fails alone.
import test from "ava";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { Outbox, reviveError, serializeError } from "../../src/service/thread.js";

function received(port: MessagePort): Promise<unknown[]> {
  return new Promise((resolve) => port.once("message", resolve));
}

test("pooled Buffers cross as their own bytes only; exact arrays and other values as they are", async (t) => {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const secretNeighbour = Buffer.from("another request's data key");
  const cipherText = Buffer.from("the result's ciphertext");
  t.true(cipherText.buffer.byteLength > cipherText.length, "the test needs a pooled Buffer");
  t.is(cipherText.buffer, secretNeighbour.buffer, "two Buffers in one pool block");
  const exact = new Uint8Array([1, 2, 3]);
  const outbox = new Outbox<unknown>(port1, () => null);
  const arrival = received(port2);
  const result = { keyId: "k", cipherText };
  outbox.push([7, result]);
  outbox.push([8, [exact, "text", 3]]);
  outbox.flush();
  const batch = await arrival as [[number, Record<string, unknown>], [number, unknown[]]];
  const [[id, value], [, list]] = batch;
  t.is(id, 7);
  const sent = value.cipherText as Uint8Array;
  t.deepEqual(Buffer.from(sent), cipherText);
  t.is(sent.buffer.byteLength, cipherText.length, "only its bytes crossed");
  t.false(Buffer.from(sent.buffer).includes("another request"), "the neighbour did not");
  t.deepEqual([...(list[0] as Uint8Array)], [1, 2, 3]);
  t.is(exact.length, 3, "an exact array is copied, not transferred (still usable here)");
  t.deepEqual(cipherText.toString(), "the result's ciphertext", "the original is untouched");
  t.is(result.cipherText, cipherText, "the pushed object still holds it: the copy went in a copy of the object");
});

test("a message that cannot be cloned is handed to undeliverable; the others arrive", async (t) => {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const refused: unknown[] = [];
  const outbox = new Outbox<unknown>(port1, (message) => {
    refused.push(message);
    return ["replacement"];
  });
  const messages: unknown[] = [];
  port2.on("message", (batch: unknown[]) => messages.push(...batch));
  outbox.push(["ok", Buffer.from("pooled bytes")]);
  outbox.push(["bad", () => undefined]);
  outbox.flush();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(refused.length, 1);
  t.deepEqual(messages.map((m) => (m as unknown[])[0]), ["ok", "replacement"]);
  t.deepEqual(Buffer.from((messages[0] as [string, Uint8Array])[1]).toString(), "pooled bytes");
});

test("any thrown value crosses as an error, even one String() cannot convert", (t) => {
  for (const [thrown, message] of [[Object.create(null), "[object Object]"], ["text", "text"], [42, "42"], [undefined, "undefined"]] as const) {
    const revived = reviveError(serializeError(thrown));
    t.true(revived instanceof Error);
    t.is(revived.message, message);
  }
});

test("afterPost runs once the batch has been posted: an exact array wiped then still arrives whole, and so does a pooled one", async (t) => {
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  // An exact array crosses by structured clone when the batch is posted, not when it is queued.
  const dataKey = new Uint8Array(Buffer.from("0123456789abcdef0123456789abcdef"));
  const plainText = Buffer.from("a plaintext in the pool");
  const result = { keyId: "k", plainText, dataKey };
  const outbox = new Outbox<unknown>(port1, () => null);
  const order: string[] = [];
  const arrival = received(port2);
  outbox.push([9, result], () => {
    order.push("after");
    for (const field of [result.plainText, result.dataKey]) field.fill(0);
  });
  t.deepEqual(order, [], "not when queued");
  outbox.flush();
  t.deepEqual(order, ["after"]);
  const [[, value]] = await arrival as [[number, { plainText: Uint8Array; dataKey: Uint8Array }]];
  t.is(Buffer.from(value.plainText).toString(), "a plaintext in the pool");
  t.is(Buffer.from(value.dataKey).toString(), "0123456789abcdef0123456789abcdef");
  t.true(plainText.every((byte) => byte === 0) && dataKey.every((byte) => byte === 0), "this side's buffers are zeroed");
});
