import type { RunningPlatform } from "@gate/cli";

export interface RestAnswer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** A REST caller of one running platform, as curl would call it. */
export function restCaller(platform: () => RunningPlatform) {
  return async (
    method: string,
    path: string,
    init: { json?: unknown; raw?: string; key?: string } = {},
  ): Promise<RestAnswer> => {
    const headers: Record<string, string> = {};
    if (init.key !== undefined) headers["x-api-key"] = init.key;
    const body = init.raw ?? (init.json === undefined ? undefined : JSON.stringify(init.json));
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${platform().url}${path}`, { method, headers, body });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text === "" ? null : JSON.parse(text),
    };
  };
}
