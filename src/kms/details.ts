/**
 * The records the Kms returns, with Huawei's field semantics in camelCase: the HTTP layer renames
 * (keyId → key_id) and encodes (numbers and booleans as JSON strings, times as millisecond
 * strings, bytes as base64 or hex) without deciding anything.
 */
import { reportedRotationEnabled } from "./rotation.js";
import type { GranteePrincipalType, GrantOperation, GrantRecord, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage } from "./types.js";

/** describe-key `key_info` (huaweicloudsdkkms key_details.py). */
export interface KeyDetails {
  keyId: string;
  domainId: string;
  keyAlias: string;
  /** The region (config.ts realm). */
  realm: string;
  keySpec: KeySpec;
  keyUsage: KeyUsage;
  keyDescription: string;
  /** ms since the epoch. */
  creationDate: number;
  /** ms since the epoch while pending deletion (state 4), else null. */
  scheduledDeletionDate: number | null;
  /** 1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import. */
  keyState: KeyState;
  /** Huawei default_key_flag "1": a `<service>/default` key. */
  defaultKeyFlag: boolean;
  /** Expiry of imported material; hsmkit's keys have none. */
  expirationTime: number | null;
  origin: KeyOrigin;
  keyRotationEnabled: boolean;
  /** Huawei's enterprise project; hsmkit has none ("0"). */
  sysEnterpriseProjectId: string;
  /** Huawei's key store; hsmkit keeps every key in the one token ("0", the default store). */
  keystoreId: string;
}

export function keyDetails(key: KeyRecord, realm: string): KeyDetails {
  return {
    keyId: key.keyId,
    domainId: key.domainId,
    keyAlias: key.alias,
    realm,
    keySpec: key.keySpec,
    keyUsage: key.keyUsage,
    keyDescription: key.description,
    creationDate: key.createdAt,
    scheduledDeletionDate: key.state === 4 ? key.deletionDate : null,
    keyState: key.state,
    defaultKeyFlag: key.defaultKey,
    expirationTime: null,
    origin: key.origin,
    keyRotationEnabled: reportedRotationEnabled(key),
    sysEnterpriseProjectId: "0",
    keystoreId: "0",
  };
}

/** list-grants `grants[]` (OTC api-ref "Querying Grants on a CMK"). */
export interface GrantDetails {
  keyId: string;
  /** 64 hex digits. */
  grantId: string;
  granteePrincipal: string;
  granteePrincipalType: GranteePrincipalType;
  operations: GrantOperation[];
  /** Who created the grant. */
  issuingPrincipal: string | null;
  /** ms since the epoch. */
  creationDate: number;
  name: string | null;
  retiringPrincipal: string | null;
}

export function grantDetails(grant: GrantRecord): GrantDetails {
  return {
    keyId: grant.keyId,
    grantId: grant.grantId,
    granteePrincipal: grant.granteePrincipal,
    granteePrincipalType: grant.granteePrincipalType,
    operations: [...grant.operations],
    issuingPrincipal: grant.creator,
    creationDate: grant.createdAt,
    name: grant.name,
    retiringPrincipal: grant.retiringPrincipal,
  };
}
