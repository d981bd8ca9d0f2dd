// Parser for HttpRule path templates (google/api/http.proto, "Path template syntax"):
//
//   Template  = "/" Segments [ Verb ] ;
//   Segments  = Segment { "/" Segment } ;
//   Segment   = "*" | "**" | LITERAL | Variable ;
//   Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb      = ":" LITERAL ;
//
// A template is flattened into one list of segments; each variable remembers the span of
// segments it covers, so matching never needs to know about variables at all.

export type TemplateSegment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "deep" };

export interface TemplateVariable {
  /** Dotted field path, as written in the template (e.g. `note.name`). */
  readonly fieldPath: string;
  /** Index of the first segment the variable covers. */
  readonly start: number;
  /** Index after the last segment the variable covers. */
  readonly end: number;
}

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:`, or "" when there is none. */
  readonly verb: string;
}

export class PathTemplateError extends Error {
  override name = "PathTemplateError";
}

// RFC 3986 pchar without ":" (which starts the verb) and "*" (a wildcard). Percent-escapes
// are checked separately by decoding.
const literalChar = /[A-Za-z0-9\-._~!$&'()+,;=@%]/;
const identStart = /[A-Za-z_]/;
const identChar = /[A-Za-z0-9_]/;

/** Parses a path template; throws PathTemplateError saying what is wrong and where. */
export function parsePathTemplate(source: string): PathTemplate {
  return new TemplateParser(source).parse();
}

class TemplateParser {
  private pos = 0;
  private readonly segments: TemplateSegment[] = [];
  private readonly variables: TemplateVariable[] = [];

  constructor(private readonly source: string) {}

  parse(): PathTemplate {
    if (!this.source.startsWith("/")) {
      this.fail("must start with '/'");
    }
    this.pos = 1;
    // "/" alone is the root path: a template with no segments.
    if (this.source.length > 1) {
      this.parseSegments(false);
    }
    let verb = "";
    if (this.peek() === ":") {
      this.pos++;
      verb = this.parseLiteral("verb");
    }
    if (this.pos < this.source.length) {
      this.fail(`unexpected '${this.peek()}'`);
    }
    this.checkDeepWildcard();
    return {
      source: this.source,
      segments: this.segments,
      variables: this.variables,
      verb,
    };
  }

  private parseSegments(inVariable: boolean): void {
    for (;;) {
      this.parseSegment(inVariable);
      if (this.peek() !== "/") {
        return;
      }
      this.pos++;
    }
  }

  private parseSegment(inVariable: boolean): void {
    const c = this.peek();
    if (c === "{") {
      if (inVariable) {
        this.fail("a variable must not contain another variable");
      }
      this.parseVariable();
    } else if (c === "*") {
      this.pos++;
      if (this.peek() === "*") {
        this.pos++;
        this.segments.push({ kind: "deep" });
      } else {
        this.segments.push({ kind: "wildcard" });
      }
    } else {
      this.segments.push({ kind: "literal", value: this.parseLiteral("segment") });
    }
  }

  private parseVariable(): void {
    this.pos++; // "{"
    const fieldPath = this.parseFieldPath();
    if (this.variables.some((v) => v.fieldPath === fieldPath)) {
      this.fail(`field '${fieldPath}' is bound twice`);
    }
    const start = this.segments.length;
    if (this.peek() === "=") {
      this.pos++;
      this.parseSegments(true);
    } else {
      // `{var}` is shorthand for `{var=*}`.
      this.segments.push({ kind: "wildcard" });
    }
    if (this.peek() !== "}") {
      this.fail("expected '}'");
    }
    this.pos++;
    this.variables.push({ fieldPath, start, end: this.segments.length });
  }

  private parseFieldPath(): string {
    const begin = this.pos;
    for (;;) {
      if (!identStart.test(this.peek())) {
        this.fail("expected a field name");
      }
      while (identChar.test(this.peek())) {
        this.pos++;
      }
      if (this.peek() !== ".") {
        return this.source.slice(begin, this.pos);
      }
      this.pos++;
    }
  }

  private parseLiteral(what: string): string {
    const begin = this.pos;
    while (literalChar.test(this.peek())) {
      this.pos++;
    }
    if (this.pos === begin) {
      this.fail(this.pos < this.source.length ? `unexpected '${this.peek()}'` : `empty ${what}`);
    }
    const raw = this.source.slice(begin, this.pos);
    try {
      // Requests are matched after percent-decoding, so literals are stored decoded too.
      return decodeURIComponent(raw);
    } catch {
      this.fail(`malformed percent-encoding in '${raw}'`);
    }
  }

  // `**` matches the rest of the path; anything after it would make matching ambiguous.
  private checkDeepWildcard(): void {
    const deep = this.segments.findIndex((s) => s.kind === "deep");
    if (deep >= 0 && deep !== this.segments.length - 1) {
      throw new PathTemplateError(
        `path template "${this.source}": '**' must be the last segment (only a verb may follow)`,
      );
    }
  }

  // Returns "" at the end of the input, which no character class matches.
  private peek(): string {
    return this.source.charAt(this.pos);
  }

  private fail(problem: string): never {
    throw new PathTemplateError(`path template "${this.source}": ${problem} at offset ${this.pos}`);
  }
}

/**
 * The value a variable captured from the request's raw (still percent-encoded) segments.
 * Per http.proto, a single-segment variable is fully decoded, while a multi-segment one
 * keeps "%2F" encoded so that an escaped slash stays distinguishable from a separator.
 */
export function captureVariable(
  template: PathTemplate,
  variable: TemplateVariable,
  rawSegments: readonly string[],
): string {
  const last = template.segments[variable.end - 1];
  const end = last?.kind === "deep" ? rawSegments.length : variable.end;
  const captured = rawSegments.slice(variable.start, end);
  if (variable.end - variable.start === 1 && last?.kind !== "deep") {
    return decodeURIComponent(captured[0] ?? "");
  }
  return captured.map(decodeKeepingSlashes).join("/");
}

function decodeKeepingSlashes(raw: string): string {
  // split() with a capture group keeps the separators at the odd indexes.
  return raw
    .split(/(%2[fF])/)
    .map((part, i) => (i % 2 === 1 ? part : decodeURIComponent(part)))
    .join("");
}
