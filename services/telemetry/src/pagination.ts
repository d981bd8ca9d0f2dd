import type { HandlerContext } from "@connectrpc/connect";

/**
 * Over REST the listings answer a bare JSON array (the shape existing clients expect), so
 * the next page's token also travels in this header; the REST gateway passes x-gate-*
 * headers back to the HTTP client. Empty on the last page: the header is then left out.
 */
export const nextPageTokenHeader = "x-gate-next-page-token";

export function announceNextPage(ctx: HandlerContext, token: string): void {
  if (token !== "") ctx.responseHeader.set(nextPageTokenHeader, token);
}
