import { notFound, type Queryable } from "@gate/runtime";
import type { DevicesStore } from "./devices-store.js";

/**
 * Which device ids exist, remembered after the first lookup so the ingest path asks the
 * database once per device, not once per sample. Devices are never deleted, so a "yes"
 * never goes stale; "no" is not remembered (the device may be registered on another replica
 * a moment later). Bounded: the memory is dropped whole when full.
 */
export class KnownDevices {
  private readonly known = new Set<string>();

  constructor(
    private readonly db: Queryable,
    private readonly devices: DevicesStore,
    private readonly maxRemembered = 100_000,
  ) {}

  /** Throws NOT_FOUND naming the device when it does not exist. */
  async require(deviceId: string): Promise<void> {
    if (this.known.has(deviceId)) return;
    if ((await this.devices.get(this.db, deviceId)) === undefined) {
      throw notFound(`device ${deviceId}`);
    }
    this.remember(deviceId);
  }

  remember(deviceId: string): void {
    if (this.known.size >= this.maxRemembered) this.known.clear();
    this.known.add(deviceId);
  }
}
