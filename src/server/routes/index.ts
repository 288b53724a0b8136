/** Every Huawei KMS route, by API group. */
import type { KmsRoute } from "../route.js";
import { AUDIT_ROUTES } from "./audit.js";
import { CRYPTO_ROUTES } from "./crypto.js";
import { GRANT_ROUTES } from "./grants.js";
import { KEY_ROUTES } from "./keys.js";
import { ROTATION_ROUTES } from "./rotation.js";
import { TAG_ROUTES } from "./tags.js";

export const KMS_ROUTES: readonly KmsRoute[] = [...KEY_ROUTES, ...CRYPTO_ROUTES, ...ROTATION_ROUTES, ...GRANT_ROUTES, ...TAG_ROUTES, ...AUDIT_ROUTES];
