// Search parameters as an operator types them ("CourtRegion=11, INSType=1") and as the
// tasks page keeps them in its URL (?param=CourtRegion%3D11&param=INSType%3D1).

export type SearchParams = Record<string, string>;

/** Parses "Key=value" pairs separated by commas or new lines; throws naming the bad one. */
export function parseSearchParams(text: string): SearchParams {
  const params: SearchParams = {};
  for (const part of text.split(/[,\n]/)) {
    const pair = part.trim();
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new Error(`"${pair}" is not Name=value`);
    params[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return params;
}

/** The inverse of parseSearchParams. */
export function searchParamsText(params: SearchParams): string {
  return Object.entries(params)
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
}

/** True when the task's parameters include every filter pair. */
export function matchesParams(task: SearchParams, filter: SearchParams): boolean {
  return Object.entries(filter).every(([key, value]) => task[key] === value);
}

export function paramsFromUrl(url: URLSearchParams): SearchParams {
  return parseSearchParams(url.getAll("param").join(","));
}

export function paramsToUrl(url: URLSearchParams, params: SearchParams): void {
  url.delete("param");
  for (const [key, value] of Object.entries(params)) url.append("param", `${key}=${value}`);
}
