/** Posts the search form the way a browser does. */
export function postForm(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, { method: "POST", body: new URLSearchParams(fields) });
}

/** The document ids of a results page, in order. */
export function resultIds(html: string): string[] {
  return [...html.matchAll(/<a class="doc_text2" href="\/Review\/(\d+)">/g)].map(
    (m) => m[1] as string,
  );
}

/** The total a results page announces. */
export function resultTotal(html: string): number | undefined {
  const match = /Знайдено документів: <b>(\d+)<\/b>/.exec(html);
  return match ? Number(match[1]) : undefined;
}
