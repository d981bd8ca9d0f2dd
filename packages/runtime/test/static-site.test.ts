import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStaticSite } from "../src/server/static-site.js";

describe("a static site under a path prefix (the console under /console/)", () => {
  let root: string;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "gate-static-"));
    mkdirSync(join(root, "assets"));
    writeFileSync(join(root, "index.html"), "<!doctype html><title>console</title>");
    writeFileSync(join(root, "assets", "app-1a2b.js"), `console.log(${"1".repeat(2000)});`);
    writeFileSync(join(root, "assets", "app-1a2b.css"), "body{}");
    writeFileSync(join(root, ".secret"), "no");
    writeFileSync(join(tmpdir(), "gate-static-outside.txt"), "outside");
    const site = createStaticSite({ prefix: "/console", root });
    server = createServer((req, res) => {
      if (site.matches(req.url ?? "/")) void site.handle(req, res);
      else res.writeHead(418).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => {
    server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("claims the prefix and nothing else", () => {
    const site = createStaticSite({ prefix: "/console", root: "/nowhere" });
    expect(site.matches("/console")).toBe(true);
    expect(site.matches("/console/tasks?status=failed")).toBe(true);
    expect(site.matches("/consoles")).toBe(false);
    expect(site.matches("/api/v1/tasks")).toBe(false);
  });

  it("redirects the bare prefix to the folder", async () => {
    const res = await fetch(`${base}/console`, { redirect: "manual" });
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe("/console/");
  });

  it("serves index.html for the folder and for unknown app routes, never cached", async () => {
    for (const path of ["/console/", "/console/tasks", "/console/tasks/5?status=failed"]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(await res.text()).toContain("<title>console</title>");
    }
  });

  it("serves hashed assets with their type, cached for good, gzipped when asked", async () => {
    const res = await fetch(`${base}/console/assets/app-1a2b.js`, {
      headers: { "accept-encoding": "identity" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const plain = await res.text();
    const css = await fetch(`${base}/console/assets/app-1a2b.css`);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");

    const raw = await rawGet(`${base}/console/assets/app-1a2b.js`, { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(raw.headers.vary).toBe("accept-encoding");
    expect(gunzipSync(raw.body).toString()).toBe(plain);
  });

  it("answers a missing asset 404 instead of the page, and revalidates with ETag", async () => {
    expect((await fetch(`${base}/console/assets/gone.js`)).status).toBe(404);
    const first = await fetch(`${base}/console/assets/app-1a2b.css`);
    const etag = first.headers.get("etag");
    expect(etag).toBeTruthy();
    const again = await fetch(`${base}/console/assets/app-1a2b.css`, {
      headers: { "if-none-match": etag ?? "" },
    });
    expect(again.status).toBe(304);
  });

  it("never serves a file outside its folder, nor a dotfile", async () => {
    for (const path of [
      "/console/../gate-static-outside.txt",
      "/console/%2e%2e/gate-static-outside.txt",
      "/console/assets/%2e%2e%2f%2e%2e%2fgate-static-outside.txt",
      "/console/.secret",
      "/console/%00.js",
    ]) {
      const raw = await rawGet(`${base}${path}`, {});
      expect(raw.body.toString(), path).not.toMatch(/outside|^no$/);
      expect([400, 404], path).toContain(raw.status);
    }
    expect((await rawGet(`${base}/console/%E0%A4%A`, {})).status).toBe(400);
  });

  it("refuses writes with 405 and answers HEAD without a body", async () => {
    const post = await fetch(`${base}/console/`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const head = await fetch(`${base}/console/`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("says how to build it when the folder has no index.html", async () => {
    const site = createStaticSite({ prefix: "/console", root: join(root, "assets") });
    const missing = createServer((req, res) => void site.handle(req, res));
    await new Promise<void>((resolve) => missing.listen(0, "127.0.0.1", resolve));
    const port = (missing.address() as AddressInfo).port;
    const res = await fetch(`http://127.0.0.1:${port}/console/`);
    missing.close();
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/not built/);
  });
});

/** A GET that sends the path as written (fetch would normalise the dots away). */
async function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}> {
  const { request } = await import("node:http");
  const parsed = new URL(url);
  const path = url.slice(parsed.origin.length);
  return new Promise((resolve, reject) => {
    const req = request({ host: parsed.hostname, port: parsed.port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}
