import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { extname, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";

/** A folder of built files served under a path prefix, as a single-page app. */
export interface StaticSiteOptions {
  /** The path it answers, without a trailing slash, e.g. "/console". */
  prefix: string;
  /** The folder holding index.html and its assets. */
  root: string;
  /** Said in the 503 when the folder has no index.html. */
  buildHint?: string;
}

export interface StaticSite {
  /** True for the prefix itself and every path under it. */
  matches(url: string): boolean;
  /** Answers one request under the prefix. Never rejects. */
  handle(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
  ): Promise<void>;
}

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};
const compressible = new Set([".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt"]);

// The page loads only its own scripts and styles and talks only to its own origin.
const pageSecurityHeaders = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

// Vite names every asset under assets/ by its content hash: a changed file has a new name.
const immutable = "public, max-age=31536000, immutable";

interface Sink {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(chunk?: string): unknown;
}

/**
 * Serves a built browser app (the operator console) from a folder: safe paths only (no
 * escape from the folder, no dotfiles), content types by extension, immutable caching for
 * hashed assets and revalidation for the page, gzip when the browser accepts it, and
 * index.html for any path without an extension, so the app's own routes survive a reload.
 */
export function createStaticSite(options: StaticSiteOptions): StaticSite {
  const prefix = options.prefix.replace(/\/+$/, "");
  const root = resolve(options.root);
  return {
    matches(url) {
      const path = url.split("?", 1)[0] ?? "";
      return path === prefix || path.startsWith(`${prefix}/`);
    },
    async handle(req, res) {
      const sink = res as unknown as Sink;
      try {
        await answer(req, sink, res, prefix, root, options.buildHint);
      } catch {
        // The client went away mid-file, or the file vanished between stat and read.
        if (!res.headersSent) plain(sink, 500, "the file could not be read");
        else res.destroy();
      }
    },
  };
}

async function answer(
  req: IncomingMessage | Http2ServerRequest,
  sink: Sink,
  res: ServerResponse | Http2ServerResponse,
  prefix: string,
  root: string,
  buildHint: string | undefined,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    sink.setHeader("allow", "GET, HEAD");
    return plain(sink, 405, "only GET and HEAD are served here");
  }
  const rawPath = (req.url ?? "/").split("?", 1)[0] ?? "/";
  if (rawPath === prefix) {
    sink.setHeader("location", `${prefix}/`);
    return plain(sink, 308, `moved to ${prefix}/`);
  }
  let relative: string;
  try {
    relative = decodeURIComponent(rawPath.slice(prefix.length + 1));
  } catch {
    return plain(sink, 400, "the path is not valid percent-encoding");
  }
  const segments = relative.split(/[/\\]/).filter((s) => s !== "");
  if (relative.includes("\0") || segments.some((s) => s.startsWith("."))) {
    return plain(sink, 404, "not found");
  }
  const file = join(root, ...segments);
  if (file !== root && !file.startsWith(root + sep)) return plain(sink, 404, "not found");

  let target = segments.length === 0 ? join(root, "index.html") : file;
  let info = await stat(target).catch(() => undefined);
  if (info?.isDirectory() === true) {
    target = join(target, "index.html");
    info = await stat(target).catch(() => undefined);
  }
  if (info === undefined || !info.isFile()) {
    // A missing file with an extension is a missing file; any other path is an app route.
    if (extname(segments.at(-1) ?? "") !== "") return plain(sink, 404, "not found");
    target = join(root, "index.html");
    info = await stat(target).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      return plain(sink, 503, `the console is not built${buildHint ? `: ${buildHint}` : ""}`);
    }
  }

  const ext = extname(target);
  const isPage = ext === ".html";
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  sink.setHeader("content-type", contentTypes[ext] ?? "application/octet-stream");
  sink.setHeader("x-content-type-options", "nosniff");
  sink.setHeader("etag", etag);
  sink.setHeader(
    "cache-control",
    !isPage && target.startsWith(join(root, "assets") + sep) ? immutable : "no-cache",
  );
  if (isPage)
    for (const [name, value] of Object.entries(pageSecurityHeaders)) sink.setHeader(name, value);
  if (req.headers["if-none-match"] === etag) {
    sink.statusCode = 304;
    sink.end();
    return;
  }
  const gzip =
    compressible.has(ext) &&
    info.size > 1024 &&
    /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  if (compressible.has(ext)) sink.setHeader("vary", "accept-encoding");
  if (gzip) sink.setHeader("content-encoding", "gzip");
  else sink.setHeader("content-length", String(info.size));
  sink.statusCode = 200;
  if (req.method === "HEAD") {
    sink.end();
    return;
  }
  const body = createReadStream(target);
  const out = res as NodeJS.WritableStream;
  if (gzip) await pipeline(body, createGzip(), out);
  else await pipeline(body, out);
}

function plain(sink: Sink, status: number, text: string): void {
  sink.statusCode = status;
  sink.setHeader("content-type", "text/plain; charset=utf-8");
  sink.setHeader("cache-control", "no-store");
  sink.end(`${text}\n`);
}
