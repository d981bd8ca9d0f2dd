// The operator's API key lives in sessionStorage only: gone when the tab closes, never in a
// URL, a cookie or a log. It is sent as the X-API-Key header on every call.

const storageKey = "gate.console.apiKey";

export function storedKey(): string | undefined {
  return sessionStorage.getItem(storageKey) ?? undefined;
}

export function storeKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageKey);
}
