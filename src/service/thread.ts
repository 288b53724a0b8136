/** Placeholder until the KMS thread lands: the service in this thread. */
import type { HsmkitConfig } from "../config/config.js";
import { KmsService, type ServiceLog, type ServicePort } from "./service.js";

export class ThreadServicePort {
  static open(config: Readonly<HsmkitConfig>, log: ServiceLog): Promise<ServicePort> {
    return KmsService.open(config, { log });
  }
}
