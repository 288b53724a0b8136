/** Every Huawei KMS route, by API group. */
import type { KmsRoute } from "../route.js";
import { KEY_ROUTES } from "./keys.js";

export const KMS_ROUTES: readonly KmsRoute[] = [...KEY_ROUTES];
