/**
 * Key rotation routes (Huawei KMS v1.0): enable, disable, interval, status, and rotate-on-demand.
 * As the Huawei SDK's models have them, enable/disable/update-interval answer an empty object;
 * get-key-rotation-status answers key_rotation_enabled (boolean), rotation_interval and
 * number_of_rotations (integers), last_rotation_time (a string of ms, "" before the first rotation)
 * and key_materials[] (show_key_rotation_status_response.py).
 */
import type * as Api from "../../kms/api.js";
import { dateString, integerString, object, SEQUENCE, string, type KmsRoute } from "../route.js";
import { KEY_ID, KEY_REQUEST, keyRequest } from "./keys.js";

const TAG = "Rotation";

const EMPTY = object({});

const ROTATION_INTERVAL = integerString("Days: 30..365");

export const ROTATION_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/enable-key-rotation", operationId: "EnableKeyRotation", tag: TAG, call: "enableKeyRotation",
    summary: "Enable automatic rotation (a new version every rotation_interval days; old versions keep decrypting). " +
      "rotation_interval here is an hsmkit addition (Huawei sets it with update-key-rotation-interval only)",
    body: object({ key_id: KEY_ID, rotation_interval: ROTATION_INTERVAL, sequence: SEQUENCE }, ["key_id"]),
    response: EMPTY,
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string, rotationInterval: body["rotation_interval"] as Api.IntegerField | undefined,
    } satisfies Api.EnableKeyRotationRequest),
    toResponse: () => ({}),
  },
  {
    method: "POST", path: "/disable-key-rotation", operationId: "DisableKeyRotation", tag: TAG, call: "disableKeyRotation",
    summary: "Disable automatic rotation (existing versions stay)", body: KEY_REQUEST, response: EMPTY,
    toRequest: ({ body }) => keyRequest(body), toResponse: () => ({}),
  },
  {
    method: "POST", path: "/update-key-rotation-interval", operationId: "UpdateKeyRotationInterval", tag: TAG, call: "updateKeyRotationInterval",
    summary: "Change the rotation interval (30-365 days) of a key whose rotation is enabled",
    body: object({ key_id: KEY_ID, rotation_interval: ROTATION_INTERVAL, sequence: SEQUENCE }, ["key_id", "rotation_interval"]),
    response: EMPTY,
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string, rotationInterval: body["rotation_interval"] as Api.IntegerField,
    } satisfies Api.UpdateKeyRotationIntervalRequest),
    toResponse: () => ({}),
  },
  {
    method: "POST", path: "/get-key-rotation-status", operationId: "ShowKeyRotationStatus", tag: TAG, call: "getKeyRotationStatus",
    summary: "Rotation status and the key's versions (key_materials: material_id is the version number, oldest first; every one decrypts, the last encrypts)",
    body: KEY_REQUEST,
    response: object({
      key_rotation_enabled: { type: "boolean" },
      rotation_interval: { type: "integer", description: "days" },
      last_rotation_time: string({ description: "ms since the epoch; empty before the first rotation" }),
      number_of_rotations: { type: "integer" },
      key_materials: {
        type: "array",
        items: object({
          material_id: string({ description: "The version number" }),
          create_time: string({ description: "ms since the epoch" }),
          state: { type: "integer", description: "2: enabled (every version of a usable key decrypts)" },
        }),
      },
    }),
    toRequest: ({ body }) => keyRequest(body),
    toResponse: (result) => {
      const r = result as Api.KeyRotationStatus;
      return {
        key_rotation_enabled: r.keyRotationEnabled,
        rotation_interval: r.rotationInterval,
        last_rotation_time: dateString(r.lastRotationTime),
        number_of_rotations: r.numberOfRotations,
        key_materials: r.keyMaterials.map((m) => ({ material_id: String(m.version), create_time: dateString(m.createdAt), state: 2 })),
      };
    },
  },
  {
    method: "POST", path: "/rotate-on-demand", operationId: "RotateOnDemand", tag: TAG, call: "rotateKeyOnDemand",
    summary: "Add a version now, whether or not automatic rotation is enabled (not a default key). " +
      "key_version and number_of_rotations are hsmkit additions to Huawei's {key_id}",
    body: KEY_REQUEST,
    response: object({ key_id: string(), key_version: { type: "integer", description: "The new current version" }, number_of_rotations: { type: "integer" } }),
    toRequest: ({ body }) => keyRequest(body),
    toResponse: (result) => {
      const r = result as Api.RotateKeyResult;
      return { key_id: r.keyId, key_version: r.keyVersion, number_of_rotations: r.numberOfRotations };
    },
  },
];
