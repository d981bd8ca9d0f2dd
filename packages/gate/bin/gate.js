#!/usr/bin/env node
// The CLI is TypeScript run through tsx, the same way in development and in the image.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
