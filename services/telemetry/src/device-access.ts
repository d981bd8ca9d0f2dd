import type { HandlerContext } from "@connectrpc/connect";
import { callerOf, permissionDenied } from "@gate/runtime";

/**
 * A device key may read and write only its own device's data; operators (and, with
 * ENABLE_AUTH=false, anonymous callers, who act as an operator) may touch any device.
 */
export function checkDeviceAccess(ctx: HandlerContext, deviceId: string, field: string): void {
  const caller = callerOf(ctx);
  if (caller.role === "device" && caller.subject !== deviceId) {
    throw permissionDenied(`${field}: this device key belongs to another device`);
  }
}
