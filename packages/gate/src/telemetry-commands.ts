import { telemetryDevicesV1, telemetryMetricsV1, telemetryUsersV1 } from "@gate/contracts";
import type { EnvVars } from "@gate/runtime";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  integerOption,
  type ServerOptions,
  serviceClient,
  withServerOptions,
} from "./tasks-commands.js";

/**
 * `gate telemetry …`: create users and devices and send samples to a running Gate, as the
 * README's tour does; answers are printed as JSON lines with the REST field names.
 */
export function telemetryCommand(env: EnvVars): Command {
  const telemetry = new Command("telemetry").description(
    "create telemetry users and devices and send samples to a running Gate",
  );

  withServerOptions(telemetry.command("create-user"), env)
    .description("create a user (name and email; the email must be new)")
    .addOption(new Option("--name <name>", "display name").makeOptionMandatory())
    .addOption(new Option("--email <email>", "email address").makeOptionMandatory())
    .action(async (options: ServerOptions & { name: string; email: string }) => {
      const { client, reach } = serviceClient(telemetryUsersV1.UsersService, options, env);
      const { user } = await reach(client.createUser({ name: options.name, email: options.email }));
      console.log(JSON.stringify({ id: user?.id, name: user?.name, email: user?.email }));
    });

  withServerOptions(telemetry.command("create-device"), env)
    .description("register a device for a user; prints its id and its key (shown only once)")
    .addOption(integerOption("--user-id <n>", "the device's user").makeOptionMandatory())
    .action(async (options: ServerOptions & { userId: number }) => {
      const { client, reach } = serviceClient(telemetryDevicesV1.DevicesService, options, env);
      const device = await reach(client.registerDevice({ userId: options.userId }));
      console.log(
        JSON.stringify({ id: device.id, user_id: device.userId, api_key: device.apiKey }),
      );
    });

  withServerOptions(telemetry.command("send"), env)
    .description("send samples of a device (with its key or an operator's)")
    .addOption(new Option("--device-id <uuid>", "the device").makeOptionMandatory())
    .addOption(
      new Option("--sample <x,y,z>", "one sample; repeat for a batch")
        .argParser(parseSample)
        .makeOptionMandatory(),
    )
    .action(async (options: ServerOptions & { deviceId: string; sample: Sample[] }) => {
      const { client, reach } = serviceClient(telemetryMetricsV1.MetricsService, options, env);
      const [first, ...rest] = options.sample;
      if (first !== undefined && rest.length === 0) {
        const res = await reach(client.recordSample({ deviceId: options.deviceId, ...first }));
        console.log(JSON.stringify({ status: res.status }));
        return;
      }
      const res = await reach(
        client.recordSamples({ deviceId: options.deviceId, samples: options.sample }),
      );
      console.log(JSON.stringify({ status: res.status, accepted: res.accepted }));
    });
  return telemetry;
}

interface Sample {
  x: number;
  y: number;
  z: number;
}

function parseSample(raw: string, previous: Sample[] | undefined): Sample[] {
  const parts = raw.split(",").map((part) => Number(part.trim()));
  const [x, y, z] = parts;
  if (parts.length !== 3 || x === undefined || y === undefined || z === undefined) {
    throw new InvalidArgumentError(`needs X,Y,Z (got "${raw}")`);
  }
  if (!parts.every(Number.isFinite)) {
    throw new InvalidArgumentError(`needs three finite numbers (got "${raw}")`);
  }
  return [...(previous ?? []), { x, y, z }];
}
