/**
 * The KMS's one error model: every failure the KMS reports is a KmsError whose `code` is a Huawei
 * KMS v1.0 error code from the registry below, with that code's HTTP status and message. The
 * registry is the single place a code is defined; the HTTP layer turns a KmsError into
 * `{"error":{"error_code":code,"error_msg":message}}` with `status`, and anything that is not a
 * KmsError into KMS.0101.
 *
 * Codes, statuses and messages are Huawei's (OTC mirror of the Huawei KMS API reference,
 * opentelekomcloud-docs/key-management-service `api-ref/source/appendix/error_code.rst`, which
 * shared/reference/kms-apis.md §1.4 summarizes). Add codes here, surgically, as operations need them.
 *
 * Two texts per error, kept apart on purpose:
 * - `message`: what a client sees — the registry's fixed text, never anything from the request,
 *   the token or the key.
 * - `detail`: what the operator's log sees — e.g. the PKCS#11 function and CKR name behind a
 *   KMS.0101. It must never hold key material, plaintext or PINs; callers pass only names, codes
 *   and lengths.
 */

export interface KmsErrorSpec {
  /** HTTP status the API answers with. */
  readonly status: number;
  /** Huawei's error_msg for the code. */
  readonly message: string;
}

/** Every KMS error code, with Huawei's status and message. */
export const KMS_ERRORS = {
  // Service and HSM failures.
  "KMS.0101": { status: 500, message: "KMS error." },
  "KMS.0102": { status: 500, message: "Abnormal KMS I/O." },
  "KMS.0103": { status: 500, message: "A system exception occurred. Contact technical support." },
  "KMS.0104": { status: 503, message: "A system exception occurred. Contact technical support." },

  // Request shape.
  "KMS.0201": { status: 400, message: "Invalid request URL." },
  "KMS.0202": { status: 400, message: "Invalid JSON format of the request message." },
  "KMS.0203": { status: 400, message: "Request message too long." },
  "KMS.0204": { status: 400, message: "Parameters missing in the request message." },
  "KMS.0205": { status: 400, message: "Invalid key ID." },
  "KMS.0206": { status: 400, message: "Invalid sequence number." },
  "KMS.0207": { status: 404, message: "The key does not exist." },
  "KMS.0208": { status: 400, message: "Invalid value of value encryption_context." },
  "KMS.0209": { status: 400, message: "The key has been disabled." },
  "KMS.0210": { status: 400, message: "The key is in Scheduled deletion state and cannot be used." },
  "KMS.0211": { status: 400, message: "Cannot perform this operation on Default Master Keys." },
  "KMS.0214": { status: 400, message: "The request format is invalid." },
  "KMS.0215": { status: 405, message: "Request method not supported." },

  // Authentication and authorization.
  "KMS.0301": { status: 403, message: "Invalid or null X-Auth-Token." },
  "KMS.0302": { status: 403, message: "Invalid X-Auth-Token." },
  "KMS.0303": { status: 403, message: "X-Auth-Token expired." },
  "KMS.0305": { status: 403, message: "Invalid X-Auth-Token project name." },
  "KMS.0306": { status: 403, message: "No access permissions." },
  "KMS.0307": { status: 403, message: "No access permissions." },
  "KMS.0308": { status: 400, message: "Invalid parameter." },
  "KMS.0313": { status: 400, message: "Key rotation is not enabled." },
  "KMS.0321": { status: 403, message: "URIs in URL and X-Auth-Token do not match." },
  /**
   * AK/SK authentication failed (unknown or inactive AK, bad signature, X-Sdk-Date outside the
   * clock-skew window, a replayed signature, no credentials at all): Huawei's API gateway code.
   * One code and message for every cause, so that a caller learns nothing about which AKs exist.
   */
  "APIGW.0301": { status: 401, message: "Incorrect IAM authentication information." },
  /** No such API (unknown path or method): Huawei's API gateway code. */
  "APIGW.0101": { status: 404, message: "The API does not exist or has not been published in the environment." },

  // Tags.
  "KMS.0401": { status: 400, message: "Tag list cannot be empty." },
  "KMS.0402": { status: 400, message: "Invalid match value." },
  "KMS.0403": { status: 400, message: "Invalid match key." },
  "KMS.0404": { status: 400, message: "Invalid action." },
  "KMS.0405": { status: 400, message: "Invalid tag value." },
  "KMS.0406": { status: 400, message: "Invalid tag key." },
  "KMS.0409": { status: 400, message: "Too many tags." },
  "KMS.0410": { status: 400, message: "Invalid tag value length." },
  "KMS.0411": { status: 400, message: "Invalid tag key length." },
  "KMS.0413": { status: 400, message: "Too many tag values." },
  "KMS.0415": { status: 400, message: "Invalid matches." },

  // Key lifecycle.
  "KMS.1101": { status: 400, message: "Invalid key_alias." },
  "KMS.1103": { status: 400, message: "Invalid key_description." },
  "KMS.1104": { status: 400, message: "Duplicate key aliases." },
  "KMS.1105": { status: 400, message: "Too many keys." },
  "KMS.1201": { status: 400, message: "The key is not disabled." },
  "KMS.1301": { status: 400, message: "The key is not enabled." },
  "KMS.1401": { status: 400, message: "Set the pending deletion period between 7 to 1096 days." },
  "KMS.1402": { status: 400, message: "The key is already in Pending deletion state." },
  "KMS.1501": { status: 400, message: "The key is not in Pending deletion state." },
  "KMS.1601": { status: 400, message: "Invalid limit." },
  "KMS.1602": { status: 400, message: "marker must be greater than or equals 0." },

  // Random numbers and data keys.
  "KMS.1802": { status: 400, message: "random_data_length must be a multiple of 8." },
  "KMS.1901": { status: 400, message: "datakey_length must be in the range 8 bits to 8,192 bits." },
  "KMS.1902": { status: 400, message: "key_spec can only be AES_128 or AES_256." },
  "KMS.1903": { status: 400, message: "datakey_length must be a multiple of 8." },

  // Encrypting and decrypting.
  "KMS.2101": { status: 400, message: "Invalid plain_text." },
  "KMS.2103": { status: 400, message: "Failed to verify the DEK hash." },
  "KMS.2104": { status: 400, message: "The length of plain_text does not match datakey_plain_length." },
  "KMS.2105": { status: 400, message: "The symmetric key not support this encryption algorithm." },
  /** The one opaque decryption error: malformed blob, wrong key/version/context, tag failure alike. */
  "KMS.2201": { status: 400, message: "Invalid cipher_text." },
  "KMS.2203": { status: 400, message: "Failed to verify the DEK hash." },
  "KMS.2204": { status: 400, message: "The length of cipher_text does not match datakey_cipher_length." },

  // Grants.
  "KMS.2401": { status: 400, message: "Specify an operation in addition to create-grant." },
  "KMS.2402": { status: 400, message: "Invalid user ID." },
  "KMS.2403": { status: 400, message: "Failed to create the grant." },
  "KMS.2404": { status: 400, message: "Too many CMK grants." },
  "KMS.2405": { status: 400, message: "Too many grants." },
  "KMS.2501": { status: 400, message: "Invalid grant ID." },
  "KMS.2502": { status: 400, message: "grant_id and key_id do not match." },

  // Rotation.
  "KMS.2901": { status: 400, message: "Key rotation is not disabled." },
  "KMS.3001": { status: 400, message: "Invalid rotation_interval." },
} as const satisfies Record<string, KmsErrorSpec>;

export type KmsErrorCode = keyof typeof KMS_ERRORS;

/** Every failure the KMS reports. Assert on `code` (and `status`), never on message text. */
export class KmsError extends Error {
  override readonly name = "KmsError";
  readonly code: KmsErrorCode;
  /** HTTP status for the API. */
  readonly status: number;
  /** Operator-facing explanation for logs (never returned to clients; never key material). */
  readonly detail: string | undefined;

  constructor(code: KmsErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec: KmsErrorSpec = KMS_ERRORS[code];
    super(spec.message, options);
    this.code = code;
    this.status = spec.status;
    this.detail = detail;
  }
}

/** True when `error` is a KmsError (optionally: with this code). */
export function isKmsError(error: unknown, code?: KmsErrorCode): error is KmsError {
  return error instanceof KmsError && (code === undefined || error.code === code);
}
